package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/policies"
)

// syntheticCluster writes the synthetic cluster of the benchmarks
// (internal/synthetic: namespaces/10 projects, one pod per user namespace,
// namespaces/5 users' NetworkPolicies) as one JSON List into dir. With
// isolated, calico-pni is installed (its policies and namespace labels);
// without, they are left out, so that --compare shows isolation being
// turned on.
func syntheticCluster(tb testing.TB, dir string, namespaces int, isolated bool) string {
	tb.Helper()
	c := synthetic.New(synthetic.Size{Namespaces: namespaces, Projects: namespaces / 10, Nodes: max(namespaces/100, 1)})
	objects, err := c.EvaluatorObjects(c.Workloads(1, namespaces/5))
	if err != nil {
		tb.Fatal(err)
	}
	if !isolated {
		objects = withoutCalicoPNI(objects)
	}
	data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": objects})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("cluster-%d-isolated=%t.json", namespaces, isolated))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// withoutCalicoPNI drops the objects calico-pni manages and the namespace
// labels it writes.
func withoutCalicoPNI(objects []any) []any {
	var out []any
	for _, obj := range objects {
		m := obj.(map[string]any)
		meta, _ := m["metadata"].(map[string]any)
		labels, _ := meta["labels"].(map[string]any)
		if labels[calico.ManagedByLabel] == calico.ManagedByValue {
			continue
		}
		if m["kind"] == "Namespace" {
			maps.DeleteFunc(labels, func(k string, _ any) bool { return strings.HasPrefix(k, policies.LabelPrefix) })
		}
		out = append(out, obj)
	}
	return out
}
