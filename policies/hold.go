package policies

import (
	"fmt"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// HoldOrder places a hold-open policy after every calico-pni allow policy
// and before the baseline.
const HoldOrder = BaselineOrder - 1

// HoldOpenName returns the name of the hold-open policy of a direction.
func HoldOpenName(dir calico.PolicyType) string {
	return "pni-hold-open-" + strings.ToLower(string(dir))
}

// HoldOpen returns the policy that keeps one direction open for isolated
// namespaces while isolation in that direction is switched on or off
// (isolateEgress changes). Switching a direction takes many writes: the
// baseline and every allow policy gain or lose that direction, and in
// Calico the first policy that selects a pod in a direction already denies
// it everything the others do not allow yet. With this policy in place
// first, each of those writes changes nothing the pod can reach; removing
// it last makes the switch a single step. It is never part of the desired
// state: the writer creates it before such a switch and deletes it once
// every other write of the switch is done.
func HoldOpen(dir calico.PolicyType) calico.Policy {
	what := "into"
	if dir == calico.Egress {
		what = "out of"
	}
	rule := []calico.Rule{{Action: calico.Allow}}
	spec := calico.GlobalNetworkPolicySpec{
		Order:             order(HoldOrder),
		NamespaceSelector: isolated().String(),
		Types:             []calico.PolicyType{dir},
	}
	if dir == calico.Ingress {
		spec.Ingress = rule
	} else {
		spec.Egress = rule
	}
	return calico.Policy{
		Name:  HoldOpenName(dir),
		Class: calico.ClassHold,
		Description: fmt.Sprintf("Transitional: traffic %s isolated namespaces stays as it was while calico-pni switches isolation in this direction on or off; removed when the switch is complete.",
			what),
		Spec: spec,
	}
}
