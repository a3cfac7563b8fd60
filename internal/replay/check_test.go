package replay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// A project p-1 of two namespaces, not yet isolated, in a cluster whose
// deny baseline (calico-pni's pni-deny-*) already selects every isolated
// namespace, with the API server's EndpointSlice.
const projectStart = `
- {apiVersion: v1, kind: Namespace, metadata: {name: x1, labels: {field.cattle.io/projectId: p-1}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: x2, labels: {field.cattle.io/projectId: p-1}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: default}}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-deny-ingress, resourceVersion: "10"}
  spec: {order: 10000, namespaceSelector: calico-pni.io/isolated == 'true', types: [Ingress]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-deny-egress, resourceVersion: "11"}
  spec: {order: 10000, namespaceSelector: calico-pni.io/isolated == 'true', types: [Egress]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
  addressType: IPv4
  endpoints: [{addresses: [10.0.0.1]}]
  ports: [{name: https, port: 6443, protocol: TCP}]
`

// wire builds the writes of one writer that sends each request once the
// previous one is answered, as the API server records them.
type wire struct {
	writes []testbed.Write
	rv     int
	now    time.Time
}

func (w *wire) write(verb, group, resource, namespace, name string, obj map[string]any) {
	w.rv++
	w.now = w.now.Add(time.Millisecond)
	tw := testbed.Write{Writer: "calico-pni", Verb: verb, APIGroup: group, APIVersion: "v1", Resource: resource,
		Namespace: namespace, Name: name, Code: 200, Received: w.now, Done: w.now.Add(500 * time.Microsecond)}
	if obj != nil {
		u := &unstructured.Unstructured{Object: obj}
		u.SetResourceVersion(fmt.Sprint(100 + w.rv))
		tw.Object, tw.ResourceVersion = u, u.GetResourceVersion()
	}
	w.writes = append(w.writes, tw)
}

// label gives a namespace calico-pni's project label, and isolates it.
func (w *wire) label(ns string, isolated bool) {
	labels := map[string]any{"field.cattle.io/projectId": "p-1", "calico-pni.io/project": "p-1"}
	if isolated {
		labels["calico-pni.io/isolated"] = "true"
	}
	w.write("patch", "", "namespaces", ns, ns, map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns, "labels": labels},
	})
}

// projectAllow writes pni-project-p-1, the project's own allow.
func (w *wire) projectAllow() {
	w.write("create", groupCalicoV1, "globalnetworkpolicies", "", "default.pni-project-p-1", map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": "default.pni-project-p-1"},
		"spec": map[string]any{
			"order": 2000, "namespaceSelector": "calico-pni.io/isolated == 'true' && calico-pni.io/project == 'p-1'",
			"types":   []any{"Ingress", "Egress"},
			"ingress": []any{map[string]any{"action": "Allow", "source": map[string]any{"namespaceSelector": "calico-pni.io/project == 'p-1'"}}},
			"egress":  []any{map[string]any{"action": "Allow", "destination": map[string]any{"namespaceSelector": "calico-pni.io/project == 'p-1'"}}},
		},
	})
}

// A namespace isolated before its project's allow exists is cut off from
// its own project until the allow comes: Check must find that gap, after
// the write that isolated it; in calico-pni's order it finds none.
func TestCheckFindsTheGap(t *testing.T) {
	start := stateOf(t, projectStart)
	bad := &wire{now: t0}
	bad.label("x1", true)
	bad.label("x2", true)
	bad.projectAllow()
	// calico-pni's order: the allow, the project labels, then isolation.
	good := &wire{now: t0}
	good.projectAllow()
	good.label("x1", false)
	good.label("x2", false)
	good.label("x1", true)
	good.label("x2", true)

	final := start.Clone()
	for _, w := range bad.writes {
		if err := final.Apply(w); err != nil {
			t.Fatal(err)
		}
	}
	probes, err := SyntheticProbes(start, final)
	if err != nil {
		t.Fatal(err)
	}
	x1x2, err := probes.Conn("x2/probe", "x1/probe", "TCP", 80)
	if err != nil {
		t.Fatal(err)
	}

	r := Check(start, bad.writes, probes)
	if len(r.Errors) > 0 {
		t.Fatalf("the replay could not decide: %v", r.Errors)
	}
	if r.Writes != 3 || r.States != 4 || r.Conns == 0 || r.Verdicts != 3*r.Conns {
		t.Errorf("counts: %s", r)
	}
	var found *Gap
	for i, g := range r.Gaps {
		if g.Conn.Src == x1x2.Src && g.Conn.Dst == x1x2.Dst && g.Conn.Port == 80 {
			found = &r.Gaps[i]
		}
	}
	switch {
	case found == nil:
		t.Fatalf("no gap for %s:\n%s", x1x2, r)
	case found.After != 0 || found.Write.Name != "x1" || found.Want != Allowed || found.Got.Verdict != Denied:
		t.Errorf("the gap of %s: %s; want it after write 0 (x1 isolated), denied where it is allowed before and after", x1x2, found)
	case !strings.Contains(found.Got.String(), "end of tier default"):
		t.Errorf("the gap's decision does not say the baseline denied it: %s", found.Got)
	}
	// The internet keeps reaching x1 until isolation, and never after:
	// its verdict changes, it is not judged.
	if r.Changed == 0 {
		t.Errorf("no connection changed verdict between start and end:\n%s", r)
	}

	if r := Check(start, good.writes, probes); len(r.Gaps) > 0 || len(r.Errors) > 0 || r.Verdicts == 0 {
		t.Errorf("the safe order:\n%s", r)
	}
}

// Writes to what decides no connection are counted and left out; a
// write the evaluator cannot replay is an error of the report.
func TestCheckCounts(t *testing.T) {
	start := stateOf(t, projectStart)
	w := &wire{now: t0}
	w.projectAllow()
	w.write("update", "coordination.k8s.io", "leases", "default", "calico-pni", nil)
	w.write("create", groupCalicoV1, "felixconfigurations", "", "default", map[string]any{"kind": "FelixConfiguration"})
	probes, err := SyntheticProbes(start)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(start, w.writes, probes)
	if r.Writes != 1 || r.Ignored != 2 || r.States != 2 || len(r.Errors) > 0 {
		t.Errorf("counts: %s", r)
	}
	w.write("create", groupCalicoV1, "hostendpoints", "", "h", map[string]any{"kind": "HostEndpoint"})
	if r := Check(start, w.writes, probes); len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "hostendpoints are not modelled") {
		t.Errorf("a HostEndpoint write: %s", r)
	}
}
