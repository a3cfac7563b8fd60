package evaluator

import (
	"github.com/calico-pni/calico-pni/calico"
)

// Verdict is the answer for a connection or one side of it.
type Verdict string

// The verdicts.
const (
	Allow         Verdict = "allow"
	Deny          Verdict = "deny"
	Indeterminate Verdict = "indeterminate"
)

// Hit is one entry of a policy trace, in the shape of Calico's flow-log
// policy trace (Goldmane's PolicyHit, goldmane/proto/api.proto), so that a
// result can be put beside a flow log: one hit per tier that decided or
// passed the traffic, then the profile if it was reached.
type Hit struct {
	// Kind is GlobalNetworkPolicy, CalicoNetworkPolicy, NetworkPolicy
	// (Kubernetes), a Staged* kind, EndOfTier or Profile.
	Kind      string
	Namespace string
	Name      string
	Tier      string
	Action    calico.Action
	// PolicyIndex counts the tiers traversed before this hit; RuleIndex is
	// the rule's index in its policy, -1 for an end of tier.
	PolicyIndex, RuleIndex int
	// Trigger names, for an end of tier, the last policy of the tier that
	// selected the endpoint: the one Felix charges the default action to
	// (felix/calc/endpoint_lookup_cache.go, TierDefaultActionRuleID).
	Trigger *Hit
}

// Step is one policy that was evaluated for a side, in evaluation order,
// or the end of a tier, or the profile.
type Step struct {
	Tier string
	// Policy is nil for an end of tier and for the profile.
	Policy *Policy
	// Rule is the index of the rule that decided, or -1.
	Rule int
	// Action is what the step did: Allow, Deny or Pass, or "" when no rule
	// of the policy matched.
	Action    calico.Action
	EndOfTier bool
	Profile   bool
	// Logged lists the Log rules that matched on the way.
	Logged []int
	// Uncertain lists rules that could not be decided, without changing
	// the result.
	Uncertain []string
}

// TierPolicies is a tier and the policies of it that select an endpoint,
// in evaluation order.
type TierPolicies struct {
	Tier          string
	Order         *float64
	DefaultAction calico.Action
	Policies      []*Policy
}

// Side is the evaluation of one direction: egress of the source or ingress
// of the destination.
type Side struct {
	Direction calico.PolicyType
	Endpoint  *Endpoint
	// Policed is false for an endpoint that has no side (an address
	// outside the cluster, a node, a host-network pod) or whose traffic
	// Calico does not police in this direction.
	Policed bool
	Verdict Verdict
	// Reason says in one sentence what decided.
	Reason string
	// Tiers are the tiers and policies that select the endpoint for this
	// direction.
	Tiers []TierPolicies
	// Steps are what was evaluated, up to the decision.
	Steps []Step
	Hits  []Hit
	// NotReached counts the selecting policies after the decision.
	NotReached int
}

// Result is the evaluation of a connection at one port.
type Result struct {
	Src, Dst *Endpoint
	Traffic  Traffic
	Verdict  Verdict
	Reason   string
	Egress   Side
	Ingress  Side
}
