package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// usersCalicoPolicies are policies the cluster's users (and an older
// calico-pni) wrote through Calico's v3 API, which the test server serves
// and the live reader prefers: the database guard of the workloads file,
// a user's GlobalNetworkPolicy that keeps the sandbox away from redis, and
// a stale calico-pni policy that --preview must replace.
const usersCalicoPolicies = `
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: db-guard, namespace: shop}
  spec:
    order: 500
    selector: app == 'db'
    types: [Ingress]
    ingress:
    - {action: Deny, source: {namespaceSelector: projectcalico.org/name == 'legacy'}}
    - {action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: [postgres]}}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: sandbox-not-to-redis}
  spec:
    order: 100
    namespaceSelector: projectcalico.org/name == 'sandbox'
    types: [Egress]
    egress:
    - {action: Deny, destination: {namespaceSelector: has(network-policy/role_redis)}}
    - {action: Pass}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata:
    name: pni-stale
    labels: {app.kubernetes.io/managed-by: calico-pni}
  spec:
    order: 1
    selector: all()
    types: [Ingress]
    ingress: [{action: Allow}]
`

// TestExplainAndMatrixFromCluster runs explain --kubeconfig and matrix
// --kubeconfig against the test API server holding the article fixture,
// its workloads, the users' Kubernetes NetworkPolicies and Calico
// policies, and a stale calico-pni policy. explain prints the same
// explanations from the cluster as from a file of the same objects; the
// matrix shows what the users' policies do today and what --compare says
// calico-pni changes.
func TestExplainAndMatrixFromCluster(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	loadFixtureOnce(t, e)
	objects := workloadObjects(t)
	for _, u := range objects {
		createObject(t, ctx, e, u)
	}
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The same objects in a file, for comparison.
	file := filepath.Join(t.TempDir(), "workloads.yaml")
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": objectMaps(objects)}
	data, err := yaml.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	web := "shop/web-6f7c9d8b4-xk2lp"
	connections := []struct {
		args []string
		want string
	}{
		{[]string{"--from", web, "--to", "redis/redis-master-0", "--port", "6379", "--preview"}, "Decided: ingress rule 0 of redis/knp.default.redis-from-consumers allows it."},
		{[]string{"--from", "legacy", "--to", "shop/db-0", "--port", "5432", "--preview"}, "Decided: ingress rule 0 of shop/db-guard denies it."},
		{[]string{"--from", "sandbox/debug", "--to", "redis/redis-master-0", "--port", "6379"}, "Decided: egress rule 0 of sandbox-not-to-redis denies it."},
		{[]string{"--from", "sandbox/debug", "--to", "shop/db-0", "--port", "5432"}, "Decided: ingress rule 0 of pni-stale allows it."},
		{[]string{"--from", "sandbox/debug", "--to", "shop/db-0", "--port", "5432", "--preview"}, "Decided: end of tier default: pni-deny-ingress selects shop/db-0"},
		{[]string{"--from", "sandbox/debug", "--to", "shop", "-o", "json"}, `"reason": "ingress rule 0 of pni-stale allows it"`},
	}
	for _, c := range connections {
		fromCluster := explainOutput(t, append([]string{"explain", "--kubeconfig", kubeconfig}, c.args...)...)
		fromFile := explainOutput(t, append([]string{"explain", "-f", fixture, "-f", file, "--calico-version", "v3.28.5"}, c.args...)...)
		if fromCluster != fromFile {
			t.Errorf("explain %v: the cluster and the file of the same objects differ:\n%s", c.args, firstDifference(fromFile, fromCluster))
		}
		if !strings.Contains(fromCluster, c.want) {
			t.Errorf("explain %v: output lacks %q:\n%s", c.args, c.want, fromCluster)
		}
	}

	code, out, stderr := calicoPNI(t, "", "matrix", "--kubeconfig", kubeconfig, "--by", "namespace", "--compare", "-o", "json")
	if code != exitOK {
		t.Fatalf("matrix --kubeconfig: exit %d: %s", code, stderr)
	}
	var m struct {
		Today, Preview struct {
			Cells []struct {
				From, To, Verdict string
				AllowedBy         []string `json:"allowedBy"`
				DeniedBy          []string `json:"deniedBy"`
			}
		}
		Changes []struct{ From, To, Change string }
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	cell := func(cells []struct {
		From, To, Verdict string
		AllowedBy         []string `json:"allowedBy"`
		DeniedBy          []string `json:"deniedBy"`
	}, from, to string) string {
		for _, c := range cells {
			if c.From == from && c.To == to {
				return c.Verdict + " " + strings.Join(c.AllowedBy, ",") + " / " + strings.Join(c.DeniedBy, ",")
			}
		}
		return "missing"
	}
	checks := []struct{ got, want string }{
		// Today the stale calico-pni policy admits everything, and the
		// users' GlobalNetworkPolicy keeps the sandbox from redis.
		{cell(m.Today.Cells, "sandbox", "shop-batch"), "allow pni-stale / "},
		{cell(m.Today.Cells, "sandbox", "redis"), "deny  / sandbox-not-to-redis"},
		// With calico-pni's policies: projects are walls.
		{cell(m.Preview.Cells, "sandbox", "shop-batch"), "deny  / pni-deny-ingress (end of tier default)"},
		{cell(m.Preview.Cells, "shop", "shop-batch"), "allow pni-project-p-b6jcw / "},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("matrix cell %q, want %q", c.got, c.want)
		}
	}
	lost := false
	for _, c := range m.Changes {
		lost = lost || (c.From == "sandbox" && c.To == "shop-batch" && c.Change == "lose")
	}
	if !lost {
		t.Errorf("--compare does not list sandbox -> shop-batch as losing connectivity: %+v", m.Changes)
	}
}

func explainOutput(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := calicoPNI(t, "", args...)
	if code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	return out
}

// workloadObjects returns the objects of the workloads file the test
// server can hold: the crd.projectcalico.org/v1 ones are left out (the
// live reader reads Calico's v3 API here), and the users' Calico policies
// are added in v3.
func workloadObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(workloads)
	if err != nil {
		t.Fatal(err)
	}
	all, err := testbed.DecodeObjects(append(data, []byte("\n---\napiVersion: v1\nkind: List\nitems:\n"+usersCalicoPolicies)...))
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	// Service accounts first: the API server admits a pod only when its
	// service account exists.
	for _, first := range []bool{true, false} {
		for _, u := range all {
			if strings.HasPrefix(u.GetAPIVersion(), "crd.projectcalico.org/") || (u.GetKind() == "ServiceAccount") != first {
				continue
			}
			out = append(out, u)
		}
	}
	return out
}

func objectMaps(objects []*unstructured.Unstructured) []any {
	out := make([]any, len(objects))
	for i, u := range objects {
		out[i] = u.DeepCopy().Object
	}
	return out
}

// createObject creates an object on the test server (a pod with its
// status, as the kubelet would report it) and removes it when the test
// ends.
func createObject(t *testing.T, ctx context.Context, e *testbed.Env, u *unstructured.Unstructured) {
	t.Helper()
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	if err != nil {
		t.Fatal(err)
	}
	plural := strings.ToLower(u.GetKind()) + "s"
	if strings.HasSuffix(u.GetKind(), "Policy") {
		plural = strings.ToLower(strings.TrimSuffix(u.GetKind(), "Policy")) + "policies"
	}
	res := e.Dynamic.Resource(gv.WithResource(plural))
	var client interface {
		Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
		UpdateStatus(context.Context, *unstructured.Unstructured, metav1.UpdateOptions) (*unstructured.Unstructured, error)
		Delete(context.Context, string, metav1.DeleteOptions, ...string) error
	} = res
	if u.GetNamespace() != "" {
		client = res.Namespace(u.GetNamespace())
	}
	obj := u.DeepCopy()
	created, err := client.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	zero := int64(0)
	t.Cleanup(func() {
		_ = client.Delete(context.Background(), u.GetName(), metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	if status, ok := u.Object["status"]; ok && u.GetKind() == "Pod" {
		created.Object["status"] = status
		if _, err := client.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("setting the status of pod %s/%s: %v", u.GetNamespace(), u.GetName(), err)
		}
	}
}
