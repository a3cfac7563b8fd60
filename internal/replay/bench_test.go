package replay

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// soakLike is a replay of the soak's size: namespaces in projects, with
// calico-pni's kinds of policy (baseline, project allows, DNS, the API,
// the System project), and writes that label namespaces and rewrite
// project allows, one after another.
func soakLike(tb testing.TB, namespaces, projects, writes int) (*State, []testbed.Write, *Probes) {
	tb.Helper()
	items := `
- {apiVersion: v1, kind: Namespace, metadata: {name: kube-system, labels: {calico-pni.io/project: p-sys}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: cattle-system, labels: {calico-pni.io/project: p-sys}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: cattle-monitoring-system, labels: {calico-pni.io/project: p-sys}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: default}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
  addressType: IPv4
  endpoints: [{addresses: [10.0.0.1]}]
  ports: [{name: https, port: 6443, protocol: TCP}]
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-deny-ingress}
  spec: {order: 10000, namespaceSelector: calico-pni.io/isolated == 'true', types: [Ingress]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-deny-egress}
  spec: {order: 10000, namespaceSelector: calico-pni.io/isolated == 'true', types: [Egress]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-allow-dns}
  spec:
    order: 2000
    namespaceSelector: calico-pni.io/isolated == 'true'
    types: [Egress]
    egress:
    - {action: Allow, protocol: UDP, destination: {namespaceSelector: projectcalico.org/name == 'kube-system', selector: k8s-app == 'kube-dns', ports: [53]}}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-allow-kube-api}
  spec:
    order: 2000
    namespaceSelector: calico-pni.io/isolated == 'true'
    types: [Egress]
    egress: [{action: Allow, protocol: TCP, destination: {services: {name: kubernetes, namespace: default}}}]
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.pni-allow-from-system-project}
  spec:
    order: 2000
    namespaceSelector: calico-pni.io/isolated == 'true'
    types: [Ingress]
    ingress: [{action: Allow, source: {namespaceSelector: calico-pni.io/project == 'p-sys'}}]
`
	for i := range namespaces {
		items += fmt.Sprintf("- {apiVersion: v1, kind: Namespace, metadata: {name: ns-%03d, labels: {calico-pni.io/project: p-%d, calico-pni.io/isolated: 'true'}}}\n", i, i%projects)
	}
	start := stateOf(tb, items)
	w := &wire{now: t0}
	for i := range writes {
		if i%2 == 0 {
			ns := fmt.Sprintf("ns-%03d", i/2%namespaces)
			labels := map[string]any{"calico-pni.io/project": fmt.Sprint("p-", (i/2/namespaces+i/2)%projects), "calico-pni.io/isolated": "true"}
			w.write("patch", "", "namespaces", ns, ns, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns, "labels": labels}})
			continue
		}
		p := fmt.Sprint("p-", i/2%projects)
		w.write("update", groupCalicoV1, "globalnetworkpolicies", "", "default.pni-project-"+p, projectPolicy(p))
	}
	final := start.Clone()
	for _, wr := range w.writes {
		if err := final.Apply(wr); err != nil {
			tb.Fatal(err)
		}
	}
	probes, err := SyntheticProbes(start, final)
	if err != nil {
		tb.Fatal(err)
	}
	return start, w.writes, probes
}

func projectPolicy(p string) map[string]any {
	return (&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": "default.pni-project-" + p},
		"spec": map[string]any{
			"order": 2000, "namespaceSelector": "calico-pni.io/isolated == 'true' && calico-pni.io/project == '" + p + "'",
			"types":   []any{"Ingress", "Egress"},
			"ingress": []any{map[string]any{"action": "Allow", "source": map[string]any{"namespaceSelector": "calico-pni.io/project == '" + p + "'"}}},
			"egress":  []any{map[string]any{"action": "Allow", "destination": map[string]any{"namespaceSelector": "calico-pni.io/project == '" + p + "'"}}},
		},
	}}).Object
}

// The soak replays about 1,500 writes against a few thousand connections:
//
//	go test ./internal/replay -run - -bench Check -benchtime 1x
func BenchmarkCheck(b *testing.B) {
	start, writes, probes := soakLike(b, 40, 6, 1500)
	b.ResetTimer()
	var r *Report
	for b.Loop() {
		r = Check(start, writes, probes)
	}
	b.StopTimer()
	if len(r.Errors) > 0 {
		b.Fatal(r.Errors[0])
	}
	b.ReportMetric(float64(len(probes.Conns)), "conns")
	b.ReportMetric(float64(r.Verdicts), "verdicts")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(max(r.Verdicts, 1)), "ns/verdict")
}
