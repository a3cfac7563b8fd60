package evaluator

import (
	"fmt"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// Kind is the kind of a policy, as Felix names it.
type Kind string

// The kinds of policy the evaluator reads.
const (
	GlobalNetworkPolicy           Kind = "GlobalNetworkPolicy"
	NetworkPolicy                 Kind = "NetworkPolicy" // Calico's namespaced policy
	KubernetesNetworkPolicy       Kind = "KubernetesNetworkPolicy"
	StagedGlobalNetworkPolicy     Kind = "StagedGlobalNetworkPolicy"
	StagedNetworkPolicy           Kind = "StagedNetworkPolicy"
	StagedKubernetesNetworkPolicy Kind = "StagedKubernetesNetworkPolicy"
)

// Staged reports whether k is a staged kind.
func (k Kind) Staged() bool { return strings.HasPrefix(string(k), "Staged") }

// Enforced returns the kind a staged kind stands for, and k otherwise.
func (k Kind) Enforced() Kind { return Kind(strings.TrimPrefix(string(k), "Staged")) }

// Namespaced reports whether policies of kind k live in a namespace.
func (k Kind) Namespaced() bool { return k.Enforced() != GlobalNetworkPolicy }

// StagedAction says what a staged policy would do once enforced.
type StagedAction string

// The staged actions (api/pkg/apis/projectcalico/v3/policy_common.go):
// Set (the default) puts the policy in place; Delete removes the enforced
// policy of the same name. Learn and Ignore are evaluated as Set: Felix
// never reads the staged action, and the update processors drop only a
// staged Delete (libcalico-go/.../updateprocessors/
// stagedglobalnetworkpolicyprocessor.go and its siblings), so their
// pending verdicts come from their rules as a Set policy's do.
const (
	StagedSet    StagedAction = calico.StagedSet
	StagedDelete StagedAction = "Delete"
	StagedLearn  StagedAction = "Learn"
	StagedIgnore StagedAction = "Ignore"
)

// Policy is one policy of any kind. Kubernetes NetworkPolicies are held
// in Calico's form (FromKubernetes), so that rule indices are Calico's.
type Policy struct {
	Kind      Kind
	Namespace string // "" for global kinds
	// Name is the name Calico's v3 API lists the policy under ("foo", or
	// "security.foo" for a policy of tier security named the Calico 3.29 to
	// 3.31 way); for Kubernetes kinds, the Kubernetes name.
	Name string
	// Tier is the policy's tier ("" means the default tier).
	Tier string
	// Spec is the policy's spec. Namespaced kinds ignore the fields a
	// GlobalNetworkPolicy alone has.
	Spec calico.GlobalNetworkPolicySpec
	// Managed is true for policies calico-pni wrote (label
	// app.kubernetes.io/managed-by=calico-pni).
	Managed bool
	// StagedAction is set for staged kinds.
	StagedAction StagedAction
	// Invalid, when set, says why Calico would not accept the policy as it
	// is; it makes every connection it might touch indeterminate.
	Invalid string
	// Labels are a Kubernetes NetworkPolicy's own labels
	// (metadata.labels, set by FromKubernetes), which tell whose policy it
	// is (Rancher's isolation labels its own); the evaluation never reads
	// them.
	Labels map[string]string
}

// TierName returns the policy's tier, "default" when none is set.
func (p *Policy) TierName() string {
	if p.Tier == "" {
		return DefaultTier
	}
	return p.Tier
}

// CalicoName is the name Felix gives the policy: knp.default.<name> for a
// Kubernetes NetworkPolicy, the v3 name otherwise.
func (p *Policy) CalicoName() string {
	switch p.Kind {
	case KubernetesNetworkPolicy:
		return "knp.default." + p.Name
	case StagedKubernetesNetworkPolicy:
		return "staged:knp.default." + p.Name
	case StagedGlobalNetworkPolicy, StagedNetworkPolicy:
		return "staged:" + p.Name
	}
	return p.Name
}

// FlowLogName is the name Calico's flow logs (Goldmane) give the policy:
// without a "<tier>." prefix, and for Kubernetes kinds the Kubernetes
// name (goldmane/proto/methods.go, HitFromString).
func (p *Policy) FlowLogName() string {
	if p.Kind == KubernetesNetworkPolicy || p.Kind == StagedKubernetesNetworkPolicy {
		return p.Name
	}
	return strings.TrimPrefix(p.Name, p.TierName()+".")
}

// FlowLogKind is the policy's kind as Calico's flow logs name it
// (goldmane/proto/api.proto, PolicyKind).
func (p *Policy) FlowLogKind() string {
	switch p.Kind {
	case NetworkPolicy:
		return "CalicoNetworkPolicy"
	case KubernetesNetworkPolicy:
		return "NetworkPolicy"
	}
	return string(p.Kind)
}

// String names the policy for people: its Calico name, and its namespace
// for namespaced kinds.
func (p *Policy) String() string {
	if p.Namespace != "" {
		return p.Namespace + "/" + p.CalicoName()
	}
	return p.CalicoName()
}

// Describe says what kind of policy p is, where it lives and its order.
func (p *Policy) Describe() string {
	var kind string
	switch p.Kind.Enforced() {
	case GlobalNetworkPolicy:
		kind = "Calico GlobalNetworkPolicy"
	case NetworkPolicy:
		kind = "Calico NetworkPolicy in " + p.Namespace
	case KubernetesNetworkPolicy:
		kind = "Kubernetes NetworkPolicy in " + p.Namespace
	}
	if p.Kind.Staged() {
		kind = "staged " + kind
	}
	order := "no order"
	if p.Spec.Order != nil {
		order = "order " + FormatOrder(*p.Spec.Order)
	}
	by := ""
	if p.Managed {
		by = ", written by calico-pni"
	}
	return fmt.Sprintf("%s, %s%s", kind, order, by)
}

// FormatOrder writes a policy's or tier's order without trailing zeros:
// 100, 100.5.
func FormatOrder(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", f), "0"), ".")
}

// Governs reports whether the policy applies to direction dir. A policy
// without types applies to both, as Felix reads an object whose types were
// never defaulted (felix/calc/policy_sorter.go, ExtractPolicyMetadata).
func (p *Policy) Governs(dir calico.PolicyType) bool {
	if len(p.Spec.Types) == 0 {
		return true
	}
	for _, t := range p.Spec.Types {
		if strings.EqualFold(string(t), string(dir)) {
			return true
		}
	}
	return false
}
