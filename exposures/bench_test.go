package exposures_test

import (
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/exposures"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/policies"
)

// BenchmarkPassComputation measures what a pass of the daemon computes
// over an unchanged cluster of 10,000 namespaces in 1,000 projects with
// 2,000 users' NetworkPolicies, without and with the exposures: the
// desired state (policies.Generate), then the exposures from the users'
// policies as the daemon keeps them (converted once, as between passes).
// docs/benchmarks.md records the figures:
//
//	go test ./exposures -run '^$' -bench PassComputation -benchmem -count 5
func BenchmarkPassComputation(b *testing.B) {
	c := synthetic.New(synthetic.Size{Namespaces: 10000, Projects: 1000, Nodes: 100})
	snap := c.Snapshot()
	snap.CalicoVersion = calico.Version{Major: 3, Minor: 28}
	cfg := config.Default()
	var users []*evaluator.Policy
	for _, np := range c.Workloads(0, 2000).NetworkPolicies {
		p, _ := evaluator.FromKubernetes(np)
		users = append(users, &p)
	}
	b.Run("generate", func(b *testing.B) {
		for b.Loop() {
			policies.Generate(snap, cfg)
		}
	})
	exposed := 0
	b.Run("generate+exposures", func(b *testing.B) {
		for b.Loop() {
			d := policies.Generate(snap, cfg)
			in := exposures.Input{SystemProject: d.SystemProject, Policies: users, WallTier: evaluator.DefaultTier,
				TierOrders: map[string]*float64{}, Namespaces: make([]exposures.Namespace, len(d.Namespaces))}
			for i, ns := range d.Namespaces {
				in.Namespaces[i] = exposures.Namespace{Name: ns.Name, Labels: snap.Namespaces[i].Labels, Project: ns.Status.Project, Isolated: ns.Status.Isolated}
			}
			exposed = len(exposures.Find(in))
		}
	})
	if exposed == 0 {
		b.Fatal("no namespace exposed: the users' policies include egress to the internet, which opens walls")
	}
}
