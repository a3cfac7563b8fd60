package evaluator_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/objects"
)

// TestMatrixTables: the matrix shares one evaluation between pairs that
// every rule treats alike; its cells must be those of evaluating every
// pair in full, on the article fixture (today and under calico-pni's
// policies), on the article cluster under Rancher's own isolation (whose
// host-network pods must never lend their outcome to a pod of the same
// peer class) and on a synthetic cluster with users' NetworkPolicies.
func TestMatrixTables(t *testing.T) {
	r := objects.NewReader()
	r.KeepSnapshot = true
	for _, name := range []string{"article-cluster.yaml", "article-workloads.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ReadFile(name, data); err != nil {
			t.Fatal(err)
		}
	}
	article := r.Finish()
	preview, _, err := objects.Preview(article, config.Default(), calico.Version{Major: 3, Minor: 28})
	if err != nil {
		t.Fatal(err)
	}
	rr := objects.NewReader()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "article-rancher-isolation.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rr.ReadFile("article-rancher-isolation.yaml", data); err != nil {
		t.Fatal(err)
	}
	c := synthetic.New(synthetic.Size{Namespaces: 200, Projects: 15, Nodes: 5})
	items, err := c.EvaluatorObjects(c.Workloads(2, 80))
	if err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	sr := objects.NewReader()
	if err := sr.ReadFile("synthetic", data); err != nil {
		t.Fatal(err)
	}
	clusters := map[string]*evaluator.Cluster{"article today": &article.Cluster, "article preview": preview,
		"article under Rancher's isolation": &rr.Finish().Cluster, "synthetic": &sr.Finish().Cluster}
	byNamespace := func(ns *evaluator.Namespace) string { return ns.Name }
	for name, cl := range clusters {
		for _, port := range []uint16{0, 8080} {
			ix := evaluator.NewIndex(cl)
			o := evaluator.MatrixOptions{Protocol: "TCP", Port: port, GroupOf: byNamespace}
			fast, full := ix.Matrix(o), evaluator.FullPathMatrix(evaluator.NewIndex(cl), o)
			if fast.Classes < 10 {
				t.Fatalf("%s: only %d classes", name, fast.Classes)
			}
			for i := range fast.Groups {
				for j := range fast.Groups {
					a, b := fast.Cells[i][j], full.Cells[i][j]
					slices.Sort(a.AllowedBy)
					slices.Sort(b.AllowedBy)
					slices.Sort(a.DeniedBy)
					slices.Sort(b.DeniedBy)
					if a.Verdict != b.Verdict || a.Pairs != b.Pairs || a.Allowed != b.Allowed || a.Denied != b.Denied || a.Partial != b.Partial ||
						a.Undecided != b.Undecided || a.Reason != b.Reason ||
						!slices.Equal(a.Ports, b.Ports) || !slices.Equal(a.AllowedBy, b.AllowedBy) || !slices.Equal(a.DeniedBy, b.DeniedBy) {
						t.Errorf("%s, port %d, %s -> %s:\n shared %+v\n full   %+v", name, port, fast.Groups[i], fast.Groups[j], a, b)
					}
				}
			}
		}
	}
}
