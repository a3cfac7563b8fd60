package replay

// This is the only file of the package that uses calico-pni's own
// evaluator: to compare it with the table that the reference evaluator
// agrees with, never to decide anything the replay reports.

import (
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/objects"
)

// productIndex reads the article fixture under a golden file with
// calico-pni's own reader and evaluator. A namespace of the golden file
// completes the cluster's, as for LoadState.
func productIndex(t *testing.T, golden string) *evaluator.Index {
	t.Helper()
	r := objects.NewReader()
	namespaces := map[string]map[string]any{}
	var order []string
	for _, path := range []string{articleCluster, articleWorkloads, golden, articleTenants} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := testbed.DecodeObjects(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if u.GetKind() != "Namespace" {
				if err := r.Add(path, u.Object); err != nil {
					t.Fatal(err)
				}
				continue
			}
			ns := namespaces[u.GetName()]
			if ns == nil {
				ns = u.Object
				namespaces[u.GetName()] = ns
				order = append(order, u.GetName())
				continue
			}
			meta := ns["metadata"].(map[string]any)
			for _, field := range []string{"labels", "annotations"} {
				merged, _ := meta[field].(map[string]any)
				if merged == nil {
					merged = map[string]any{}
				}
				more, _ := u.Object["metadata"].(map[string]any)[field].(map[string]any)
				maps.Copy(merged, more)
				meta[field] = merged
			}
		}
	}
	for _, name := range order {
		if err := r.Add("namespaces", namespaces[name]); err != nil {
			t.Fatal(err)
		}
	}
	set := r.Finish()
	return evaluator.NewIndex(&set.Cluster)
}

func productEndpoint(t *testing.T, ix *evaluator.Index, ep *Endpoint) *evaluator.Endpoint {
	t.Helper()
	if ns, name, ok := strings.Cut(ep.Name, "/"); ok {
		e, err := ix.PodEndpoint(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	return ix.AddrEndpoint(ep.Addr)
}

// calico-pni's own evaluator on the article table: it must agree with
// every row in every mode (it once let a pod's own pcns. labels pass it
// off as a pod of another namespace; the forger rows show the fix).
func TestProductEvaluatorAgrees(t *testing.T) {
	probes := articleProbes(t)
	for _, mode := range articleModes {
		ix := productIndex(t, mode.golden)
		for _, row := range articleTable {
			c := row.conn(t, probes)
			res := ix.Evaluate(productEndpoint(t, ix, c.Src), productEndpoint(t, ix, c.Dst), c.Protocol, c.Port)
			want := evaluator.Deny
			if mode.want(row) == Allowed {
				want = evaluator.Allow
			}
			if res.Verdict != want {
				t.Errorf("%s: calico-pni's evaluator says %s is %s (%s); the table says %s (%s)", mode.name, c, res.Verdict, res.Reason, mode.want(row), row.why)
			}
		}
	}
}
