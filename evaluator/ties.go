package evaluator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// How Felix orders policies of equal order in a tier
// (felix/calc/policy_sorter.go, PolKVLess) changed in Calico 3.32:
//
//   - up to 3.31 it compares the policies' v1 names, which the update
//     processors build as "<tier>.<name>" for a GlobalNetworkPolicy,
//     "<namespace>/<tier>.<name>" for a NetworkPolicy and
//     "<namespace>/knp.default.<name>" for a Kubernetes NetworkPolicy
//     (libcalico-go/lib/names, updateprocessors/*policyprocessor.go);
//   - from 3.32 it compares "<name>/<namespace>/<kind>" with the plain
//     v3 name.
//
// The two disagree where a name is another's prefix followed by "-" or
// "." (both sort before "/"), and between namespaced and global policies.

// tieOrder says which of the two rules applies.
type tieOrder int

const (
	// ties332 is the rule of Calico 3.32 and later, also used when the
	// version is not known.
	ties332 tieOrder = iota
	// tiesV1Names is the rule of Calico 3.31 and earlier.
	tiesV1Names
)

// comparePolicies orders policies of a tier as Felix's PolKVLess: by
// order, no order last, then by the tie-break of the Calico version.
func comparePolicies(a, b *Policy, ties tieOrder) int {
	if c := cmp.Compare(orderValue(a.Spec.Order), orderValue(b.Spec.Order)); c != 0 {
		return c
	}
	return cmp.Compare(tieKey(a, ties), tieKey(b, ties))
}

// tieKey is the text Felix compares between policies of equal order. A
// staged policy evaluated as if enforced takes the enforced one's place,
// and its key.
func tieKey(p *Policy, ties tieOrder) string {
	kind := p.Kind.Enforced()
	if ties == ties332 {
		return p.Name + "/" + p.Namespace + "/" + string(kind)
	}
	name := p.Name
	switch {
	case kind == KubernetesNetworkPolicy:
		name = "knp.default." + p.Name
	case !strings.HasPrefix(name, p.TierName()+"."):
		// A name of Calico 3.29 to 3.31 in a non-default tier carries its
		// tier already; a default-tier one is stored as default.<name>.
		name = p.TierName() + "." + name
	}
	if p.Namespace != "" {
		name = p.Namespace + "/" + name
	}
	return name
}

// maxTieNotes bounds the notes about ties an unknown version leaves open.
const maxTieNotes = 5

// noteUnknownTies says, when the Calico version is not known, which
// policies tie on order and are evaluated in another order by Calico 3.31
// and earlier than by 3.32, whose order the evaluator follows, where that
// can change a verdict: both apply to a direction and one of them has a
// Deny or Pass rule for it (between Allow rules the order only changes
// which policy is named). Namespaced policies meet only the global ones
// and those of their own namespace.
func (ix *Index) noteUnknownTies(global []*compiledPolicy) {
	type groupKey struct {
		tier  *tierInfo
		order float64
	}
	groups := func(list []*compiledPolicy) map[groupKey][]*compiledPolicy {
		out := map[groupKey][]*compiledPolicy{}
		for _, cp := range list {
			k := groupKey{cp.tier, orderValue(cp.Spec.Order)}
			out[k] = append(out[k], cp)
		}
		return out
	}
	keyParts := func(k groupKey) (string, float64) { return k.tier.name, k.order }
	var notes []string
	// check notes the first pair of a group that the two rules order
	// differently; with local, only pairs with a namespaced policy.
	check := func(group []*compiledPolicy, local bool) {
		for _, dir := range []calico.PolicyType{calico.Ingress, calico.Egress} {
			for _, d := range group {
				if !d.Governs(dir) || !decidesBeyondAllow(d, dir) {
					continue
				}
				for _, m := range group {
					if m == d || !m.Governs(dir) || (local && !d.Kind.Namespaced() && !m.Kind.Namespaced()) {
						continue
					}
					modern := comparePolicies(d.Policy, m.Policy, ties332)
					if modern*comparePolicies(d.Policy, m.Policy, tiesV1Names) >= 0 {
						continue
					}
					first, other := d, m
					if modern > 0 {
						first, other = m, d
					}
					order := "no order"
					if first.Spec.Order != nil {
						order = "order " + FormatOrder(*first.Spec.Order)
					}
					notes = append(notes, fmt.Sprintf("%s and %s have the same order (%s) in tier %s: Calico 3.32 and later evaluate %s first, Calico 3.31 and earlier evaluate %s first; the Calico version is not known (read a ClusterInformation), so the evaluator follows 3.32",
						first.Policy, other.Policy, order, first.tier.name, first.Policy, other.Policy))
					return
				}
			}
		}
	}
	globals := groups(global)
	for _, k := range sortedGroupKeys(globals, keyParts) {
		check(globals[k], false)
	}
	for _, ns := range slices.Sorted(mapKeys(ix.namespaced)) {
		local := groups(ix.namespaced[ns])
		for _, k := range sortedGroupKeys(local, keyParts) {
			check(append(slices.Clone(local[k]), globals[k]...), true)
		}
	}
	if len(notes) > maxTieNotes {
		notes = append(notes[:maxTieNotes], fmt.Sprintf("%d more pairs of policies tie on order and are evaluated in another order by Calico 3.31 and earlier", len(notes)-maxTieNotes))
	}
	ix.notes = append(ix.notes, notes...)
}

// decidesBeyondAllow reports whether a policy has a Deny or Pass rule for
// a direction: one whose place among the tier's policies can change a
// verdict.
func decidesBeyondAllow(cp *compiledPolicy, dir calico.PolicyType) bool {
	for _, r := range cp.rules(dir) {
		if r.action == calico.Deny || r.action == calico.Pass {
			return true
		}
	}
	return false
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sortedGroupKeys orders the keys of tie groups by tier name and order,
// so that notes come out the same on every run.
func sortedGroupKeys[K comparable, V any](m map[K]V, parts func(K) (string, float64)) []K {
	keys := slices.Collect(mapKeys(m))
	slices.SortFunc(keys, func(a, b K) int {
		an, ao := parts(a)
		bn, bo := parts(b)
		return cmp.Or(cmp.Compare(an, bn), cmp.Compare(ao, bo))
	})
	return keys
}
