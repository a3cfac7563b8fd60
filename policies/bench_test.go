package policies_test

import (
	"fmt"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/policies"
)

// BenchmarkGenerate measures building the whole desired state (every
// policy, validated, and every namespace's labels and status) from a
// snapshot, at the sizes of docs/benchmarks.md:
//
//	go test ./policies -run '^$' -bench Generate -benchmem
func BenchmarkGenerate(b *testing.B) {
	for _, size := range []synthetic.Size{{Namespaces: 1000, Projects: 100, Nodes: 20}, {Namespaces: 10000, Projects: 1000, Nodes: 100}} {
		snap := synthetic.New(size).Snapshot()
		snap.CalicoVersion = calico.Version{Major: 3, Minor: 28}
		cfg := config.Default()
		b.Run(fmt.Sprintf("namespaces=%d", size.Namespaces), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := policies.Generate(snap, cfg)
				if len(d.Invalid) > 0 {
					b.Fatal(d.Invalid)
				}
			}
		})
	}
}
