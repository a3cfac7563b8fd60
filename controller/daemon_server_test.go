package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

const wait = 30 * time.Second

// 1. Cold start on the article fixture: every policy and status is in
// place, and a pass over the unchanged cluster writes nothing.
func TestColdStart(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	first := r.c.LastPass()
	if first.API != v128 {
		t.Errorf("API %+v, want crd.projectcalico.org/v1 on Calico 3.28", first.API)
	}
	for _, tt := range []struct {
		ns       string
		state    policies.State
		isolated bool
		project  string
	}{
		{"shop", policies.Isolated, true, "p-b6jcw"},
		{"redis", policies.Isolated, true, "p-mcb29"},
		{"kube-system", policies.Exempt, false, "p-7xq2n"},
		{"sandbox", policies.Open, false, ""},
		{"intruder", policies.Error, true, "p-mcb29"},
		{"squatter", policies.Error, true, ""},
	} {
		st, labels := status(t, e, tt.ns)
		if st.State != tt.state || st.Isolated != tt.isolated || st.Project != tt.project {
			t.Errorf("%s: %+v", tt.ns, st)
		}
		if (labels[policies.IsolatedLabel] == "true") != tt.isolated {
			t.Errorf("%s: isolated label %q", tt.ns, labels[policies.IsolatedLabel])
		}
	}
	names := policyNames(t, e, v128)
	for _, want := range []string{"pni-deny-ingress", "pni-deny-egress", "pni-project-p-b6jcw", "pni-project-p-mcb29", "pni-allow-dns", "pni-allow-kube-api", "pni-role-redis", "pni-allow-ingress-controller"} {
		if !slices.Contains(names, want) {
			t.Errorf("policy %s missing from %v", want, names)
		}
	}
	objects, _ := managedPolicies(e, v128)
	for key := range objects {
		if !strings.HasPrefix(key, "/default.pni-") {
			t.Errorf("stored name %s lacks the default. prefix Calico 3.28 needs", key)
		}
	}

	// A refresh re-reads everything from the API server: nothing to write.
	n := r.writes.Count()
	res := r.waitPass(t, "refresh", r.c.Refresh)
	if res.Err != nil || r.writes.Count() != n {
		t.Errorf("refresh over an unchanged cluster: error %v, writes %v", res.Err, r.writes.Since(n))
	}
	// An event that changes nothing calico-pni reads: nothing to write.
	n = r.writes.Count()
	t.Cleanup(func() {
		patch := []byte(`{"metadata":{"annotations":{"example.com/touched":null}}}`)
		if _, err := e.Kube.CoreV1().Namespaces().Patch(context.Background(), "sandbox", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Error(err)
		}
	})
	r.waitPass(t, "event", func() {
		patch := []byte(`{"metadata":{"annotations":{"example.com/touched":"yes"}}}`)
		if _, err := e.Kube.CoreV1().Namespaces().Patch(context.Background(), "sandbox", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if got := r.writes.Since(n); len(got) != 0 {
		t.Errorf("after a change calico-pni does not read, the controller wrote %v", got)
	}
}

// 2. Membership changes: the policy set and the statuses follow a
// namespace into a project, to another, out of it and out of the cluster.
func TestMembershipChanges(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)

	createNamespace(t, e, testbed.Namespace("m-app", clusterID, "p-new01"))
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if st, labels := status(t, e, "m-app"); st.State != policies.Isolated || st.Project != "p-new01" || labels[policies.ProjectLabel] != "p-new01" || !slices.Contains(st.Policies, "pni-project-p-new01") {
		t.Fatalf("new project namespace: %+v %v", st, labels)
	}

	move := func(project string) {
		t.Helper()
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, "m-app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if project == "" {
			delete(ns.Labels, "field.cattle.io/projectId")
			delete(ns.Annotations, "field.cattle.io/projectId")
		} else {
			ns.Labels["field.cattle.io/projectId"] = project
			ns.Annotations["field.cattle.io/projectId"] = clusterID + ":" + project
		}
		if _, err := e.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// To another project: its old project loses its last namespace.
	move("p-b6jcw")
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if names := policyNames(t, e, v128); slices.Contains(names, "pni-project-p-new01") {
		t.Errorf("pni-project-p-new01 outlived its last namespace: %v", names)
	}
	if st, _ := status(t, e, "m-app"); st.Project != "p-b6jcw" || !slices.Contains(st.Policies, "pni-project-p-b6jcw") {
		t.Errorf("after the move: %+v", st)
	}

	// Out of every project: open, labels gone.
	move("")
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if st, labels := status(t, e, "m-app"); st.State != policies.Open || labels[policies.IsolatedLabel] != "" || labels[policies.ProjectLabel] != "" {
		t.Errorf("out of the project: %+v %v", st, labels)
	}

	// A namespace of a new project is deleted: the project's policy goes.
	createNamespace(t, e, testbed.Namespace("m-gone", clusterID, "p-new02"))
	testbed.Eventually(t, wait, func() error {
		if !slices.Contains(policyNames(t, e, v128), "pni-project-p-new02") {
			return fmt.Errorf("pni-project-p-new02 not written yet")
		}
		return nil
	})
	if err := e.DeleteNamespace(ctx, "m-gone"); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if slices.Contains(policyNames(t, e, v128), "pni-project-p-new02") {
		t.Error("pni-project-p-new02 outlived its namespace")
	}

	// The System project changes: p-mcb29's namespaces become exempt and
	// the System source follows.
	sys := *config.Default()
	sys.SystemProject = "p-mcb29"
	r.waitPass(t, "refresh", func() { r.c.SetConfig(&sys) })
	testbed.Eventually(t, wait, func() error { return converged(e, &sys, v128) })
	if st, labels := status(t, e, "redis"); st.State != policies.Exempt || labels[policies.IsolatedLabel] != "" {
		t.Errorf("redis in the new System project: %+v %v", st, labels)
	}
	objects, _ := managedPolicies(e, v128)
	from := objects["/default.pni-allow-from-system-project"]
	if from == nil || !strings.Contains(fmt.Sprint(from.Object["spec"]), "calico-pni.io/project == 'p-mcb29'") {
		t.Errorf("System source after the change: %v", from)
	}
}

// 3. Nodes: the kube-api policy follows nodes from the watch.
func TestNodeChangesFromWatch(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	cfg.KubeAPI.RefreshSchedule = "0 0 1 1 *" // once a year: only the watch acts
	r := start(t, e, cfg)
	r.waitReady(t)
	nodeScenario(t, e, cfg)
	if r.c.LastPass().Kind != "event" {
		t.Errorf("last pass was a %s pass, want an event pass", r.c.LastPass().Kind)
	}
}

// 3b. Nodes: the cron refresh alone brings the kube-api policy up to date
// (events wait an hour here, so only the schedule acts).
func TestNodeChangesFromRefreshSchedule(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	cfg.KubeAPI.RefreshSchedule = "@every 1s"
	r := start(t, e, cfg, func(o *controller.Options) { o.Debounce = time.Hour })
	r.waitReady(t)
	nodeScenario(t, e, cfg)
}

func nodeScenario(t *testing.T, e *testbed.Env, cfg *config.Config) {
	ctx := context.Background()
	kubeAPINets := func() []string {
		objects, err := managedPolicies(e, v128)
		if err != nil {
			t.Fatal(err)
		}
		u := objects["/default.pni-allow-kube-api"]
		if u == nil {
			return nil
		}
		spec, err := calico.SpecOf(u)
		if err != nil {
			t.Fatal(err)
		}
		var nets []string
		for _, r := range spec.Egress {
			nets = append(nets, r.Destination.Nets...)
		}
		return nets
	}
	expect := func(present, absent string) {
		t.Helper()
		testbed.Eventually(t, wait, func() error {
			nets := kubeAPINets()
			if present != "" && !slices.Contains(nets, present) {
				return fmt.Errorf("%s not in the kube-api policy: %v", present, nets)
			}
			if absent != "" && slices.Contains(nets, absent) {
				return fmt.Errorf("%s still in the kube-api policy: %v", absent, nets)
			}
			return converged(e, cfg, v128)
		})
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-9"}}
	created, err := e.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Kube.CoreV1().Nodes().Delete(context.Background(), "worker-9", metav1.DeleteOptions{}) })
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.99"}}
	if created, err = e.Kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("10.0.0.99/32", "")

	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.98"}}
	if _, err = e.Kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("10.0.0.98/32", "10.0.0.99/32")

	if err := e.Kube.CoreV1().Nodes().Delete(ctx, "worker-9", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("10.0.0.11/32", "10.0.0.98/32")
}

// 4. Drift: a managed policy edited or deleted by hand is restored; a
// policy without the managed-by label is never touched, even one whose
// name calico-pni wants.
func TestDrift(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	gnp := e.Dynamic.Resource(v128.Resource("GlobalNetworkPolicy"))

	// A user's own policies: one with a similar name, one with exactly the
	// name calico-pni will want for a project that does not exist yet.
	similar := userPolicy("default.pni-allow-dns-custom")
	squatting := userPolicy("default.pni-project-p-taken")
	for _, u := range []*unstructured.Unstructured{similar, squatting} {
		if _, err := gnp.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, name := range []string{similar.GetName(), squatting.GetName()} {
			_ = gnp.Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	before := map[string]*unstructured.Unstructured{}
	for _, name := range []string{similar.GetName(), squatting.GetName()} {
		u, err := gnp.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before[name] = u
	}

	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	// Edit: widen the DNS rule to any destination.
	dns, err := gnp.Get(ctx, "default.pni-allow-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(dns.Object, []any{map[string]any{"action": "Allow"}}, "spec", "egress"); err != nil {
		t.Fatal(err)
	}
	if _, err := gnp.Update(ctx, dns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	// Delete: the baseline itself.
	if err := gnp.Delete(ctx, "default.pni-deny-ingress", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	// The project whose policy name is taken: calico-pni does not touch
	// the user's policy, does not isolate the namespace, and says why.
	createNamespace(t, e, testbed.Namespace("d-taken", clusterID, "p-taken"))
	testbed.Eventually(t, wait, func() error {
		st, labels, err := readStatus(e, "d-taken")
		if err != nil {
			return err
		}
		if st.State != policies.Error || labels[policies.IsolatedLabel] != "" || !strings.Contains(strings.Join(st.Problems, " "), "not managed by calico-pni") {
			return fmt.Errorf("d-taken: %+v %v", st, labels)
		}
		return nil
	})
	for name, b := range before {
		u, err := gnp.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u.GetResourceVersion() != b.GetResourceVersion() {
			t.Errorf("the user's policy %s was changed:\n%v\n%v", name, b.Object, u.Object)
		}
	}
}

func userPolicy(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1",
		"kind":       "GlobalNetworkPolicy",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"team": "platform"}},
		"spec": map[string]any{
			"order":    float64(5),
			"selector": "app == 'legacy'",
			"types":    []any{"Ingress"},
		},
	}}
}

// 5. Spoofing: a namespace whose label names another project than its
// annotation is not admitted there, and a forged calico-pni label is put
// right.
func TestSpoofing(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)

	spoof := testbed.Namespace("s-spoof", clusterID, "p-mcb29")
	spoof.Labels["field.cattle.io/projectId"] = "p-b6jcw"
	createNamespace(t, e, spoof)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	st, labels := status(t, e, "s-spoof")
	if labels[policies.ProjectLabel] != "p-mcb29" || st.Project != "p-mcb29" || st.State != policies.Error {
		t.Errorf("spoofing namespace: %+v %v", st, labels)
	}
	if len(st.Problems) == 0 || !strings.Contains(st.Problems[0], `label field.cattle.io/projectId="p-b6jcw" disagrees with the annotation`) {
		t.Errorf("problems %v", st.Problems)
	}
	if slices.Contains(st.Policies, "pni-project-p-b6jcw") {
		t.Error("the spoofing namespace is selected by the project its label claims")
	}

	// Forging calico-pni's own label is undone.
	patch := []byte(`{"metadata":{"labels":{"calico-pni.io/project":"p-b6jcw"}}}`)
	if _, err := e.Kube.CoreV1().Namespaces().Patch(ctx, "s-spoof", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, wait, func() error {
		_, labels, err := readStatus(e, "s-spoof")
		if err != nil {
			return err
		}
		if labels[policies.ProjectLabel] != "p-mcb29" {
			return fmt.Errorf("forged label still there: %v", labels)
		}
		return nil
	})

	// Events on the namespace say what happened: it was isolated (it was
	// created while calico-pni ran), it has a problem, and its forged
	// label was put back.
	testbed.Eventually(t, wait, func() error {
		events, err := e.Kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=s-spoof"})
		if err != nil {
			return err
		}
		reasons := map[string]bool{}
		for _, ev := range events.Items {
			reasons[ev.Reason] = true
		}
		for _, want := range []string{"PolicyProblem", "LabelsRestored"} {
			if !reasons[want] {
				return fmt.Errorf("no %s event on s-spoof yet (have %v)", want, reasons)
			}
		}
		return nil
	})
}

// 9. v1 mode end to end is covered above; cleanup leaves nothing behind.
const cleanupUser = "calico-pni-cleanup"

func TestCleanupLeavesNothing(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	r.stop()
	assertCleanedUp(t, e, v128)
}

// assertCleanedUp runs the product's cleanup and checks that it removed
// everything, in the order that never denies more than before: the
// namespace labels, then the baseline, then the allows.
func assertCleanedUp(t *testing.T, e *testbed.Env, api calico.API) {
	t.Helper()
	assertOrder(t, cleanUp(t, e, api), []string{"out"}, []string{"delete baseline"}, []string{"delete allow"})
}

// cleanUp runs the product's cleanup as its own user, checks that nothing
// calico-pni wrote is left, and returns its writes from the wire record.
func cleanUp(t *testing.T, e *testbed.Env, api calico.API) []testbed.Write {
	t.Helper()
	ctx := context.Background()
	m := mark(t, e)
	as := testbed.As(e.Config, cleanupUser)
	res, err := cluster.Cleanup(ctx, kubernetes.NewForConfigOrDie(as), dynamic.NewForConfigOrDie(as), discovery.NewDiscoveryClientForConfigOrDie(as), cluster.CleanupOptions{Workers: 16})
	if err != nil {
		t.Fatal(err)
	}
	var writes []testbed.Write
	all, err := e.Wire().Writes(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range all {
		if w.Writer == cleanupUser {
			writes = append(writes, w)
		}
	}
	if res.Policies < 10 || res.Namespaces < 10 {
		t.Errorf("cleanup removed %d policies and released %d namespaces; expected the fixture's", res.Policies, res.Namespaces)
	}
	if names := policyNames(t, e, api); len(names) != 0 {
		t.Errorf("managed policies left: %v", names)
	}
	if err := testbed.NoNamespaceKeysLeft(ctx, e.Kube); err != nil {
		t.Error(err)
	}
	return writes
}
