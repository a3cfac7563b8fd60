package charttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// The chart's life on a real API server with Calico's CRDs: installed as
// Helm installs it, its pods accepted under the restricted Pod Security
// Standard, the daemon run under the chart's ServiceAccount and RBAC until
// it has isolated the article's cluster, the label guard refusing edits of
// calico-pni's labels, and the uninstall hook run under its own
// ServiceAccount until nothing calico-pni wrote is left.
func TestInstallRunUninstall(t *testing.T) {
	e := testbed.Need(t, env)
	calicoPNI := calicoPNIBin(t)
	ctx := context.Background()
	objects := render(t)
	loadFixture(t, e)

	var deployment appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &deployment)
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)

	a, err := newApplier(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The label guard would outlive the test; the rest is namespaced or inert.
		for _, o := range objects {
			if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
				if err := a.delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
					t.Error(err)
				}
			}
		}
	})

	if !t.Run("install", func(t *testing.T) { install(t, e, a, objects) }) {
		return
	}
	if !t.Run("restricted pods", func(t *testing.T) {
		restrictedPods(t, e, deployment.Spec.Template.Spec, job.Spec.Template.Spec)
	}) {
		return
	}

	alice := user(t, e, "alice", "system:authenticated")
	grantNamespaceEditor(t, e, alice)
	// The guard refuses once the API server has loaded it. A dry run goes
	// through admission without changing anything.
	testbed.Eventually(t, 60*time.Second, func() error {
		err := patchLabels(alice, "shop", `{"calico-pni.io/isolated":"true"}`, true)
		if isForbidden(err) {
			return nil
		}
		return fmt.Errorf("the label guard is not refusing yet: %v", err)
	})

	daemon := serviceAccount(t, e, namespace, deployment.Spec.Template.Spec.ServiceAccountName)
	if !t.Run("daemon", func(t *testing.T) { runDaemon(t, e, calicoPNI, daemon, objects, deployment) }) {
		return
	}
	t.Run("label guard", func(t *testing.T) { labelGuard(t, e, alice, daemon) })

	hook := serviceAccount(t, e, namespace, job.Spec.Template.Spec.ServiceAccountName)
	t.Run("uninstall hook", func(t *testing.T) { runCleanup(t, e, calicoPNI, hook, job) })
}

// install validates every manifest with a server-side dry run, then
// applies them, hooks included, into a release namespace that enforces the
// restricted Pod Security Standard.
func install(t *testing.T, e *testbed.Env, a *applier, objects []*unstructured.Unstructured) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, dryRun := range []bool{true, false} {
		for _, o := range objects {
			if err := a.apply(ctx, o, dryRun); err != nil {
				t.Fatalf("dry run %t: %v", dryRun, err)
			}
		}
	}
	d, err := e.Kube.AppsV1().Deployments(namespace).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("the Deployment has %d replicas, want 2", *d.Spec.Replicas)
	}
}

// restrictedPods creates the daemon's and the hook's pods (dry run) in the
// release namespace, which enforces the restricted standard; a pod without
// the chart's security context is refused there, so the check is real.
func restrictedPods(t *testing.T, e *testbed.Env, specs ...corev1.PodSpec) {
	ctx := context.Background()
	create := func(name string, spec corev1.PodSpec) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: spec}
		_, err := e.Kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	for i, spec := range specs {
		if err := create(fmt.Sprintf("chart-pod-%d", i), spec); err != nil {
			t.Errorf("pod template %d is refused: %v", i, err)
		}
	}
	bare := specs[0].DeepCopy()
	bare.SecurityContext = nil
	for i := range bare.Containers {
		bare.Containers[i].SecurityContext = nil
	}
	if err := create("bare-pod", *bare); !isForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a pod without the security context: %v, want refused by the restricted standard", err)
	}
}

func grantNamespaceEditor(t *testing.T, e *testbed.Env, id *identity) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "charttest-namespace-editor"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"}},
			// The subresources too: a label change sent through them is
			// stored like any other.
			{APIGroups: []string{""}, Resources: []string{"namespaces/status", "namespaces/finalize"}, Verbs: []string{"update", "patch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "charttest-namespace-editor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: id.name}},
	}
	if _, err := e.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	checkAccess(t, e, id, []access{{verb: "patch", resource: "namespaces", name: "shop", allowed: true}})
}

func patchLabels(id *identity, ns, labels string, dryRun bool) error {
	return patchNamespace(id, ns, `{"metadata":{"labels":`+labels+`}}`, dryRun)
}

func patchNamespace(id *identity, ns, patch string, dryRun bool, subresource ...string) error {
	opts := metav1.PatchOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := id.kube.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), opts, subresource...)
	return err
}

var apiModeMetric = regexp.MustCompile(`calico_pni_api_mode\{calico_version="([^"]*)",group="([^"]*)"\} 1`)

// runDaemon runs `calico-pni run` with the Deployment's arguments under
// the daemon's ServiceAccount, until it leads and has isolated the
// fixture.
func runDaemon(t *testing.T, e *testbed.Env, bin string, id *identity, objects []*unstructured.Unstructured, d appsv1.Deployment) {
	ctx := context.Background()
	container := d.Spec.Template.Spec.Containers[0]
	configFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(configFile, renderedConfig(t, objects), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := containerArgs(t, container, "calico-pni-test-0")
	args = replaceFlag(t, args, "config", configFile)
	args = replaceFlag(t, args, "http-address", fmt.Sprintf("127.0.0.1:%d", port))
	args = append(args, "--kubeconfig="+id.kubeconfig, "--log-format=text")
	p := start(t, bin, args...)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testbed.Eventually(t, 120*time.Second, func() error {
		select {
		case <-p.done:
			t.Fatalf("calico-pni run exited: %v", p.err)
		default:
		}
		if strings.Contains(strings.ToLower(p.output.String()), "forbidden") {
			t.Fatal("the chart's RBAC refuses the daemon something it needs (its log follows)")
		}
		code, body, err := httpGet(base + "/readyz")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, "leader") {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, _, err := httpGet(base + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v", code, err)
	}

	// Every namespace of the fixture has a status, shop is isolated.
	for _, name := range fixtureNamespaces(t) {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation]); err != nil || ns.Annotations[policies.StatusAnnotation] == "" {
			t.Errorf("namespace %s: status %q (%v)", name, ns.Annotations[policies.StatusAnnotation], err)
		}
	}
	shop, err := e.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shop.Labels[policies.IsolatedLabel] != "true" {
		t.Errorf("shop has labels %v, want %s=true", shop.Labels, policies.IsolatedLabel)
	}
	// The release namespace is exempt, never isolated.
	own, err := e.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := policies.DecodeStatus(own.Annotations[policies.StatusAnnotation]); err != nil || st.State != policies.Exempt || own.Labels[policies.IsolatedLabel] != "" {
		t.Errorf("the release namespace: status %+v (%v), labels %v; want exempt", st, err, own.Labels)
	}

	// The project's policy is in the API the daemon reports it chose: v3,
	// which the test server serves besides v1.
	_, metrics, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := apiModeMetric.FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no calico_pni_api_mode in /metrics")
	}
	version, err := calico.ParseVersion(m[1])
	if err != nil {
		t.Fatal(err)
	}
	api := calico.API{Group: strings.Split(m[2], "/")[0], Version: version}
	if api.Group != calico.GroupV3 {
		t.Errorf("the daemon writes %s, want %s/v3 (served besides v1)", m[2], calico.GroupV3)
	}
	name := api.StoredName("pni-project-p-b6jcw")
	policy, err := e.Dynamic.Resource(api.Resource("GlobalNetworkPolicy")).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("policy %s in %s: %v", name, m[2], err)
	} else if policy.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue {
		t.Errorf("policy %s has labels %v", name, policy.GetLabels())
	}

	// Events about namespaces land in "default", where the chart lets the
	// daemon write them (the fixture's forged project labels are problems).
	testbed.Eventually(t, 30*time.Second, func() error {
		// The selector docs/install.md gives.
		events, err := e.Kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "source=calico-pni"})
		if err != nil {
			return err
		}
		for _, ev := range events.Items {
			if ev.InvolvedObject.Kind == "Namespace" && ev.InvolvedObject.Name == "intruder" {
				return nil
			}
		}
		return fmt.Errorf("no calico-pni event about namespace intruder in default (%d events from calico-pni)", len(events.Items))
	})
	// The leader Lease, named by the chart, in the release namespace.
	lease, err := e.Kube.CoordinationV1().Leases(namespace).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else if lease.Spec.HolderIdentity == nil || !strings.HasPrefix(*lease.Spec.HolderIdentity, "calico-pni-test-0_") {
		t.Errorf("lease %s/%s is held by %v", namespace, release, lease.Spec.HolderIdentity)
	}

	cannotReadSecrets(t, id)
	checkAccess(t, e, id, daemonAccess)
	if err := p.stop(t); err != nil {
		t.Errorf("calico-pni run did not stop cleanly on SIGTERM: %v", err)
	}
	// Every request the daemon made was allowed: a missing rule shows up in
	// its log as "forbidden" even where the daemon carries on.
	if out := p.output.String(); strings.Contains(strings.ToLower(out), "forbidden") {
		t.Errorf("the daemon was refused something:\n%s", out)
	}
}

// daemonAccess is what the daemon's ServiceAccount may and may not do.
var daemonAccess = []access{
	{"list", "", "namespaces", "", "", true},
	{"watch", "", "namespaces", "", "", true},
	{"patch", "", "namespaces", "", "shop", true},
	{"update", "", "namespaces", "", "shop", false},
	{"delete", "", "namespaces", "", "shop", false},
	{"create", "", "namespaces", "", "", false},
	{"list", "", "nodes", "", "", true},
	{"watch", "", "nodes", "", "", true},
	{"patch", "", "nodes", "", "cp-1", false},
	{"list", "discovery.k8s.io", "endpointslices", "default", "", true},
	{"watch", "discovery.k8s.io", "endpointslices", "default", "", true},
	{"list", "discovery.k8s.io", "endpointslices", "kube-system", "", false},
	{"create", "", "events", "default", "", true},
	{"patch", "", "events", "default", "", true},
	{"create", "", "events", namespace, "", true},
	{"create", "", "events", "kube-system", "", false},
	{"create", "coordination.k8s.io", "leases", namespace, "", true},
	{"get", "coordination.k8s.io", "leases", namespace, release, true},
	{"update", "coordination.k8s.io", "leases", namespace, release, true},
	{"update", "coordination.k8s.io", "leases", namespace, "other", false},
	{"update", "coordination.k8s.io", "leases", "kube-system", release, false},
	{"create", "crd.projectcalico.org", "globalnetworkpolicies", "", "", true},
	{"update", "projectcalico.org", "globalnetworkpolicies", "", "pni-allow-dns", true},
	{"delete", "projectcalico.org", "globalnetworkpolicies", "", "pni-allow-dns", true},
	{"create", "crd.projectcalico.org", "networkpolicies", "shop", "", false},
	{"create", "crd.projectcalico.org", "felixconfigurations", "", "", false},
	{"get", "crd.projectcalico.org", "clusterinformations", "", "default", true},
	{"get", "projectcalico.org", "clusterinformations", "", "default", true},
	{"update", "crd.projectcalico.org", "clusterinformations", "", "default", false},
	{"get", "apiregistration.k8s.io", "apiservices", "", "v3.projectcalico.org", true},
	{"get", "apiregistration.k8s.io", "apiservices", "", "v1.apps", false},
	{"get", "projectcalico.org", "tiers", "", "default", true},
	{"get", "projectcalico.org", "tiers", "", "security", false},
	{"create", "projectcalico.org", "tier.globalnetworkpolicies", "", "default.*", true},
	{"create", "projectcalico.org", "tier.globalnetworkpolicies", "", "security.*", false},
	{"get", "", "secrets", namespace, "", false},
	{"list", "", "secrets", "", "", false},
	{"list", "", "configmaps", namespace, "", false},
	// Pods (host ports) and Services (NodePort, LoadBalancer) are read
	// cluster-wide, never changed.
	{"list", "", "pods", "", "", true},
	{"watch", "", "pods", "", "", true},
	{"list", "", "services", "", "", true},
	{"watch", "", "services", "", "", true},
	{"update", "", "pods", namespace, "", false},
	{"patch", "", "pods", "default", "", false},
	{"delete", "", "services", "default", "", false},
	{"patch", "apps", "deployments", namespace, release, false},
}

// labelGuard checks that the ValidatingAdmissionPolicy refuses changes of
// calico-pni's labels and status by others, and nothing else.
func labelGuard(t *testing.T, e *testbed.Env, alice, daemon *identity) {
	ctx := context.Background()
	refused := func(what string, err error) {
		t.Helper()
		if !isForbidden(err) || !strings.Contains(err.Error(), "calico-pni.io/") {
			t.Errorf("%s: %v, want refused by the label guard", what, err)
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v, want allowed", what, err)
		}
	}
	refused("alice sets shop's isolated label to false", patchLabels(alice, "shop", `{"calico-pni.io/isolated":"false"}`, false))
	refused("alice removes shop's isolated label", patchLabels(alice, "shop", `{"calico-pni.io/isolated":null}`, false))
	refused("alice changes shop's project label", patchLabels(alice, "shop", `{"calico-pni.io/project":"p-mcb29"}`, false))
	refused("alice adds a calico-pni label to sandbox", patchLabels(alice, "sandbox", `{"calico-pni.io/isolated":"true"}`, false))
	refused("alice removes shop's status", patchNamespace(alice, "shop", `{"metadata":{"annotations":{"calico-pni.io/status":null}}}`, false))
	refused("alice forges shop's status", patchNamespace(alice, "shop", `{"metadata":{"annotations":{"calico-pni.io/status":"{}"}}}`, false))
	_, err := alice.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "guard-forged", Labels: map[string]string{"calico-pni.io/isolated": "true"},
	}}, metav1.CreateOptions{})
	refused("alice creates a namespace with a calico-pni label", err)
	// The status and finalize subresources store label changes too.
	refused("alice moves shop to another project through namespaces/status",
		patchNamespace(alice, "shop", `{"metadata":{"labels":{"calico-pni.io/project":"p-x"}}}`, false, "status"))
	refused("alice removes shop's isolated label through namespaces/status",
		patchNamespace(alice, "shop", `{"metadata":{"labels":{"calico-pni.io/isolated":null}}}`, false, "status"))
	refused("alice forges shop's status through namespaces/status",
		patchNamespace(alice, "shop", `{"metadata":{"annotations":{"calico-pni.io/status":"{}"}}}`, false, "status"))
	forged, err := alice.kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged.Labels[policies.ProjectLabel] = "p-x"
	_, err = alice.kube.CoreV1().Namespaces().Finalize(ctx, forged, metav1.UpdateOptions{})
	refused("alice moves shop to another project through namespaces/finalize", err)

	shop, err := e.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shop.Labels[policies.IsolatedLabel] != "true" {
		t.Fatalf("shop's labels changed: %v", shop.Labels)
	}

	allowed("alice labels shop team=blue", patchLabels(alice, "shop", `{"team":"blue"}`, false))
	allowed("alice removes shop's team label", patchLabels(alice, "shop", `{"team":null}`, false))
	// A whole-object update that keeps calico-pni's keys as they are.
	shop, err = alice.kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shop.Annotations["note"] = "updated by alice"
	_, err = alice.kube.CoreV1().Namespaces().Update(ctx, shop, metav1.UpdateOptions{})
	allowed("alice updates shop keeping calico-pni's labels", err)
	allowed("alice removes her note", patchNamespace(alice, "shop", `{"metadata":{"annotations":{"note":null}}}`, false))
	allowed("alice labels shop through namespaces/status", patchNamespace(alice, "shop", `{"metadata":{"labels":{"team":"red"}}}`, false, "status"))
	allowed("alice removes that label", patchLabels(alice, "shop", `{"team":null}`, false))

	// calico-pni's own identity may change them; so may alice delete a
	// namespace that carries them.
	_, err = alice.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "guard-scratch"}}, metav1.CreateOptions{})
	allowed("alice creates a plain namespace", err)
	allowed("calico-pni labels it", patchLabels(daemon, "guard-scratch", `{"calico-pni.io/isolated":"true","calico-pni.io/project":"p-b6jcw"}`, false))
	allowed("calico-pni changes shop's isolated label (dry run)", patchLabels(daemon, "shop", `{"calico-pni.io/isolated":"false"}`, true))
	allowed("calico-pni removes shop's status (dry run)", patchNamespace(daemon, "shop", `{"metadata":{"annotations":{"calico-pni.io/status":null}}}`, true))
	err = alice.kube.CoreV1().Namespaces().Delete(ctx, "guard-scratch", metav1.DeleteOptions{})
	allowed("alice deletes a namespace with calico-pni labels", err)
	if err := e.DeleteNamespace(ctx, "guard-scratch"); err != nil {
		t.Error(err)
	}
}

// runCleanup runs `calico-pni cleanup` with the hook Job's arguments under
// the hook's ServiceAccount, with the Deployment in place (the test bed
// runs no pods, so it stops at once), and checks that nothing calico-pni
// wrote is left and nothing else was touched.
func runCleanup(t *testing.T, e *testbed.Env, bin string, id *identity, job batchv1.Job) {
	ctx := context.Background()
	v1 := calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}
	v3 := calico.API{Group: calico.GroupV3}
	// A managed policy left in the other API, and a user's own policy that
	// must survive.
	stale := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1.GroupVersion().String(), "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": v1.StoredName("pni-stale"), "labels": map[string]any{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: string(calico.ClassAllow)}},
		"spec":     map[string]any{"namespaceSelector": "calico-pni.io/isolated == 'true'", "types": []any{"Ingress"}},
	}}
	users := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v3.GroupVersion().String(), "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": "users-own"},
		"spec":     map[string]any{"selector": "app == 'web'", "types": []any{"Ingress"}},
	}}
	for _, p := range []*unstructured.Unstructured{stale, users} {
		api := v1
		if p.GetAPIVersion() == v3.GroupVersion().String() {
			api = v3
		}
		if _, err := e.Dynamic.Resource(api.Resource("GlobalNetworkPolicy")).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = e.Dynamic.Resource(v3.Resource("GlobalNetworkPolicy")).Delete(context.Background(), "users-own", metav1.DeleteOptions{})
	})

	args := append(containerArgs(t, job.Spec.Template.Spec.Containers[0], "calico-pni-cleanup-test"), "--kubeconfig="+id.kubeconfig)
	out, err := run(t, bin, args...)
	if err != nil {
		t.Fatalf("calico-pni %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !regexp.MustCompile(`released [1-9][0-9]* namespaces, deleted [1-9][0-9]* policies`).MatchString(out) {
		t.Errorf("cleanup output:\n%s", out)
	}
	if strings.Contains(strings.ToLower(out), "forbidden") {
		t.Errorf("the hook was refused something:\n%s", out)
	}

	d, err := e.Kube.AppsV1().Deployments(namespace).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 0 {
		t.Errorf("the hook left the Deployment at %d replicas", *d.Spec.Replicas)
	}
	if err := testbed.NoNamespaceKeysLeft(ctx, e.Kube); err != nil {
		t.Error(err)
	}
	for _, api := range []calico.API{v1, v3} {
		left, err := e.Dynamic.Resource(api.Resource("GlobalNetworkPolicy")).List(ctx, metav1.ListOptions{LabelSelector: calico.ManagedByLabel + "=" + calico.ManagedByValue})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range left.Items {
			t.Errorf("policy %s is left in %s", p.GetName(), api.GroupVersion())
		}
	}
	if _, err := e.Dynamic.Resource(v3.Resource("GlobalNetworkPolicy")).Get(ctx, "users-own", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's own policy: %v", err)
	}

	cannotReadSecrets(t, id)
	checkAccess(t, e, id, hookAccess)
}

// hookAccess is what the uninstall hook's ServiceAccount may and may not do.
var hookAccess = []access{
	{"list", "", "namespaces", "", "", true},
	{"patch", "", "namespaces", "", "shop", true},
	{"delete", "", "namespaces", "", "shop", false},
	{"list", "crd.projectcalico.org", "globalnetworkpolicies", "", "", true},
	{"delete", "crd.projectcalico.org", "globalnetworkpolicies", "", "default.pni-allow-dns", true},
	{"list", "projectcalico.org", "globalnetworkpolicies", "", "", true},
	{"delete", "projectcalico.org", "globalnetworkpolicies", "", "pni-allow-dns", true},
	{"create", "projectcalico.org", "globalnetworkpolicies", "", "", false},
	{"update", "crd.projectcalico.org", "globalnetworkpolicies", "", "default.pni-allow-dns", false},
	{"get", "projectcalico.org", "tiers", "", "default", true},
	{"delete", "projectcalico.org", "tier.globalnetworkpolicies", "", "default.*", true},
	{"patch", "apps", "deployments", namespace, release, true},
	{"patch", "apps", "deployments", namespace, "other", false},
	{"patch", "apps", "deployments", "kube-system", release, false},
	{"delete", "apps", "deployments", namespace, release, false},
	{"list", "", "pods", namespace, "", true},
	{"list", "", "pods", "kube-system", "", false},
	{"delete", "", "pods", namespace, "", false},
	{"get", "", "secrets", namespace, "", false},
	{"list", "", "secrets", "", "", false},
}
