package policies

import (
	"fmt"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// HoldOrder places a hold-open policy after every calico-pni allow policy
// and before the baseline.
const HoldOrder = BaselineOrder - 1

// HoldOpenName returns the name of the hold-open policy of a direction in a
// tier ("" for the default tier).
func HoldOpenName(tier string, dir calico.PolicyType) string {
	prefix := NamePrefix
	if tier != "" && tier != calico.DefaultTier {
		prefix = TierNamePrefix
	}
	return prefix + "hold-open-" + strings.ToLower(string(dir))
}

// HoldOpen returns the policy that keeps one direction as it is for
// isolated namespaces while calico-pni's policies of a tier change in that
// direction as a whole: isolation switched on or off in a direction
// (isolateEgress), or the policies moving between the default tier and
// calico-pni's own (enforcement). Such a change takes many writes, and in
// Calico the first policy of a tier that selects a pod in a direction
// already denies it everything the others do not allow yet. With this
// policy in place first, each of those writes changes nothing the pod can
// reach; removing it last makes the change a single step.
//
// In the default tier it allows everything (the default tier is the last
// one calico-pni's traffic reaches); in calico-pni's tier it passes
// everything on to the tiers after, as if the tier had no policy for the
// pod. It is never part of the desired state: the writer creates it before
// such a change and deletes it once every other write of the change is
// done.
func HoldOpen(tier string, dir calico.PolicyType) calico.Policy {
	what := "into"
	if dir == calico.Egress {
		what = "out of"
	}
	action, spec := calico.Allow, calico.GlobalNetworkPolicySpec{
		Order:             order(HoldOrder),
		NamespaceSelector: isolated().String(),
		Types:             []calico.PolicyType{dir},
	}
	if tier != "" && tier != calico.DefaultTier {
		action, spec.Tier = calico.Pass, tier
	}
	rule := []calico.Rule{{Action: action}}
	if dir == calico.Ingress {
		spec.Ingress = rule
	} else {
		spec.Egress = rule
	}
	return calico.Policy{
		Name:  HoldOpenName(tier, dir),
		Class: calico.ClassHold,
		Description: fmt.Sprintf("Transitional: traffic %s isolated namespaces stays as it was while calico-pni changes its policies in this direction; removed when the change is complete.",
			what),
		Spec: spec,
	}
}
