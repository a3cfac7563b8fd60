package evaluator

import (
	"cmp"
	"slices"

	"github.com/calico-pni/calico-pni/calico"
)

// globalIndex finds the GlobalNetworkPolicies that may select an endpoint
// without evaluating every one: a policy whose selector requires
// key == value is filed under that term (the one whose key tells most
// policies apart), the others are always checked. At 1,000 projects,
// calico-pni alone writes a thousand per-project policies, each requiring
// its project's label.
type globalIndex struct {
	byTerm map[string]map[string][]*compiledPolicy
	always []*compiledPolicy
}

func newGlobalIndex(policies []*compiledPolicy) globalIndex {
	values := map[string]map[string]bool{}
	terms := make([][][2]string, len(policies))
	for i, cp := range policies {
		if cp.selects == nil {
			continue
		}
		terms[i] = calico.RequiredEqs(cp.selects.Selector)
		for _, t := range terms[i] {
			if values[t[0]] == nil {
				values[t[0]] = map[string]bool{}
			}
			values[t[0]][t[1]] = true
		}
	}
	gi := globalIndex{byTerm: map[string]map[string][]*compiledPolicy{}}
	for i, cp := range policies {
		if len(terms[i]) == 0 {
			gi.always = append(gi.always, cp)
			continue
		}
		best := slices.MaxFunc(terms[i], func(a, b [2]string) int {
			return cmp.Compare(len(values[a[0]]), len(values[b[0]]))
		})
		if gi.byTerm[best[0]] == nil {
			gi.byTerm[best[0]] = map[string][]*compiledPolicy{}
		}
		gi.byTerm[best[0]][best[1]] = append(gi.byTerm[best[0]][best[1]], cp)
	}
	return gi
}

// candidates returns, in evaluation order, the policies that may select
// an endpoint with these labels.
func (gi globalIndex) candidates(labels map[string]string) []*compiledPolicy {
	out := slices.Clone(gi.always)
	for key, byValue := range gi.byTerm {
		if v, ok := labels[key]; ok {
			out = append(out, byValue[v]...)
		}
	}
	slices.SortFunc(out, func(a, b *compiledPolicy) int { return cmp.Compare(a.pos, b.pos) })
	return out
}
