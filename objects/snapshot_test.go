package objects

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// readSnapshot reads text as `render -f` does: the one reader of cluster
// files, collecting the generator's input.
func readSnapshot(t testing.TB, name, text string) (policies.Snapshot, []string, error) {
	t.Helper()
	r := NewReader()
	r.KeepSnapshot = true
	if err := r.ReadFile(name, []byte(text)); err != nil {
		return policies.Snapshot{}, nil, err
	}
	set := r.Finish()
	if set.Snapshot == nil {
		return policies.Snapshot{}, set.Notes, nil
	}
	return *set.Snapshot, set.Notes, nil
}

// TestSnapshotFormats: several documents, a JSON List; kinds the
// generator does not read are skipped with a note.
func TestSnapshotFormats(t *testing.T) {
	multi := `
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {x: "1"}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.0.1}, {type: Hostname, address: n1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: a}
---
`
	snap, notes, err := readSnapshot(t, "multi.yaml", multi)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Namespaces) != 1 || snap.Namespaces[0].Labels["x"] != "1" {
		t.Errorf("namespaces %+v", snap.Namespaces)
	}
	if len(snap.Nodes) != 1 || !reflect.DeepEqual(snap.Nodes[0].Addresses, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) {
		t.Errorf("nodes %+v", snap.Nodes)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "ConfigMap a/c") || !strings.Contains(notes[0], "skipped") {
		t.Errorf("notes %v", notes)
	}

	list := `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}`
	snap, _, err = readSnapshot(t, "list.json", list)
	if err != nil || len(snap.Namespaces) != 1 || snap.Namespaces[0].Name != "b" {
		t.Errorf("JSON List: %+v, %v", snap, err)
	}
}

// TestSnapshotEndpoints: the API server's addresses come from the ready
// endpoints of default/kubernetes only; Rancher's NetworkPolicies are kept
// for the copies the generator makes of them, other NetworkPolicies not.
func TestSnapshotEndpoints(t *testing.T) {
	data := `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.2], conditions: {ready: true}}
- {addresses: [10.0.0.3], conditions: {ready: false}}
- {addresses: [10.0.0.1]}
ports: [{name: https, port: 6443, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.9.9.9]}]
ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np-default, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-1}}}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: mine, namespace: shop}
spec: {podSelector: {}}
`
	snap, _, err := readSnapshot(t, "eps.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []policies.APIEndpoint{{Addr: netip.MustParseAddr("10.0.0.1"), Port: 6443}, {Addr: netip.MustParseAddr("10.0.0.2"), Port: 6443}}
	if !reflect.DeepEqual(snap.APIEndpoints, want) {
		t.Errorf("endpoints %v, want %v (a not-ready endpoint is left out, and only default/kubernetes counts)", snap.APIEndpoints, want)
	}
	if len(snap.RancherPolicies) != 1 || snap.RancherPolicies[0].Name != "np-default" {
		t.Errorf("Rancher's policies %v, want np-default alone", snap.RancherPolicies)
	}
}

// TestSnapshotErrors: what no API server would accept is refused, with
// the document, the object and the field.
func TestSnapshotErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{"kind: Namespace\nmetadata: {name: a}", "in.yaml: document 1: apiVersion and kind must be set"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {}", "in.yaml: document 1 (Namespace ): metadata.name must be set"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad_Name}", "metadata.name: \"Bad_Name\" is not a namespace name"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {'bad key!': x}}", "(Namespace a): metadata.labels: key \"bad key!\""},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {k: 'v v'}}", "metadata.labels.k: value \"v v\""},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: [x]}", "(Namespace a)"},
		{"apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nstatus: {addresses: [{type: InternalIP, address: 10.0.0.300}]}", "(Node node1): status.addresses[0].address: \"10.0.0.300\" is not an IP address"},
		{"apiVersion: v1\nkind: Node\nmetadata: {name: n}", "metadata.name must be a string, not false"},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: NodePort}", "(Service web): metadata.namespace must be set"},
		{"apiVersion: v1\nkind: List\nitems: [1]", "items[0] is not an object"},
		{"apiVersion: v1\nkind: List\nitems: {a: b}", "items must be a list"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}", "document 2 (Namespace a): this object appears twice"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a\n", "document 1: not valid YAML"},
	}
	for _, tt := range tests {
		_, _, err := readSnapshot(t, "in.yaml", tt.data)
		if err == nil {
			t.Errorf("reading %q succeeded, want %q", tt.data, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("reading %q = %v\nwant it to contain %q", tt.data, err, tt.want)
		}
	}
}

// TestSnapshotOnce: explain's reading and render's are one: the
// generator's input from the article's files read together is the one
// the preview generates from, and it holds every namespace the
// evaluator's cluster holds.
func TestSnapshotOnce(t *testing.T) {
	set := readArticle(t, true)
	if set.Snapshot == nil {
		t.Fatal("no snapshot with KeepSnapshot")
	}
	if len(set.Snapshot.Namespaces) != len(set.Cluster.Namespaces) || len(set.Snapshot.Nodes) != len(set.Cluster.Nodes) {
		t.Errorf("snapshot has %d namespaces and %d nodes, the cluster %d and %d", len(set.Snapshot.Namespaces), len(set.Snapshot.Nodes), len(set.Cluster.Namespaces), len(set.Cluster.Nodes))
	}
	if !reflect.DeepEqual(set.Snapshot.Nodes, set.Cluster.Nodes) {
		t.Errorf("the generator and the evaluator read different nodes:\n%+v\n%+v", set.Snapshot.Nodes, set.Cluster.Nodes)
	}
	if readArticle(t, false).Snapshot != nil {
		t.Error("a snapshot without KeepSnapshot")
	}
}

// FuzzSnapshot feeds the reader arbitrary files: it must never panic,
// and whatever it accepts must generate valid policies.
func FuzzSnapshot(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {field.cattle.io/projectId: p-a}, annotations: {field.cattle.io/projectId: 'c:p-a'}}"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"addresses":[{"type":"InternalIP","address":"fd00::1"}]}}]}`))
	f.Add([]byte("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: k, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}\nendpoints: [{addresses: [1.2.3.4]}]\nports: [{port: 443}]"))
	cfg := config.Default()
	cfg.IsolateUnassigned = true
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, _, err := readSnapshot(t, "fuzz.yaml", string(data))
		if err != nil {
			return
		}
		d := policies.Generate(snap, cfg)
		for _, inv := range d.Invalid {
			t.Fatalf("accepted input generated an invalid policy: %v", inv.Err)
		}
	})
}
