package flows

import (
	"strings"
	"time"

	"github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// Flow is one flow log entry: the connections between two endpoints at a
// port during one aggregation interval, seen on one side, with the
// policies that decided them. It is Goldmane's Flow in plain Go, so that
// code outside this package needs no protobuf types.
type Flow struct {
	Src, Dst Endpoint
	// Port and Protocol of the destination ("TCP", "UDP", "SCTP", "ICMP").
	Port     int
	Protocol string
	// Service is the Service the source connected to, if any.
	Service Service
	// Reporter says which side's policies the traces are: ReporterSrc (the
	// source's egress) or ReporterDst (the destination's ingress).
	Reporter Reporter
	// Action is what Felix did: "allow" or "deny".
	Action string
	// Enforced is the trace of the policies Felix enforced; Pending the
	// trace it would have followed with staged policies in place.
	Enforced, Pending []Hit
	// Start and End bound the aggregation interval (15 seconds).
	Start, End time.Time
	// Connections is the number of connections started in the interval.
	Connections int64
}

// Endpoint is one end of a flow.
type Endpoint struct {
	Namespace string
	// Name is, for pods, the GenerateName their owner gave them
	// ("web-7c9f5d-"); for a Network endpoint "pub" or "pvt"; for a
	// NetworkSet or HostEndpoint its name.
	Name string
	// Type is WorkloadEndpoint, HostEndpoint, NetworkSet or Network.
	Type string
	// Labels are those every pod of the flow shares.
	Labels map[string]string
}

// Service is the Kubernetes Service a flow was addressed to.
type Service struct {
	Namespace, Name, PortName string
	Port                      int
}

// Reporter is the side a flow was seen on.
type Reporter string

// The reporters.
const (
	ReporterSrc Reporter = "src"
	ReporterDst Reporter = "dst"
)

// Endpoint types, as Goldmane names them.
const (
	WorkloadEndpoint = "WorkloadEndpoint"
	HostEndpoint     = "HostEndpoint"
	NetworkSet       = "NetworkSet"
	Network          = "Network"
)

// Direction is the direction of policy a trace belongs to.
type Direction string

// The directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Side returns the endpoint whose policies the flow's traces are, the
// endpoint at the other end, and the direction of those policies.
func (f Flow) Side() (local, peer Endpoint, dir Direction) {
	if f.Reporter == ReporterSrc {
		return f.Src, f.Dst, Egress
	}
	return f.Dst, f.Src, Ingress
}

// Hit is one entry of a policy trace (Goldmane's PolicyHit): a policy rule
// that took an action, the end of a tier, or the profile.
type Hit struct {
	// Kind is Goldmane's PolicyKind name: GlobalNetworkPolicy,
	// CalicoNetworkPolicy, NetworkPolicy (Kubernetes), a Staged* kind,
	// ClusterNetworkPolicy, Profile or EndOfTier.
	Kind      string
	Namespace string
	// Name is the policy's name as calico-pni writes it, without a
	// "<tier>." prefix ("pni-tier-staged-deny-ingress").
	Name string
	Tier string
	// Action is "allow", "deny" or "pass".
	Action      string
	PolicyIndex int
	// RuleIndex is -1 for the end of a tier.
	RuleIndex int
	// Trigger is, for an end of tier, the policy charged with the tier's
	// default action.
	Trigger *Hit
}

// Kinds of hit this package looks at.
const (
	KindEndOfTier                 = "EndOfTier"
	KindProfile                   = "Profile"
	KindStagedGlobalNetworkPolicy = "StagedGlobalNetworkPolicy"
)

// Decision returns the hit that decided a trace: its last one. A trace
// without hits decided nothing that Goldmane reported.
func Decision(trace []Hit) (Hit, bool) {
	if len(trace) == 0 {
		return Hit{}, false
	}
	return trace[len(trace)-1], true
}

// FromProto converts a flow as Goldmane sends it.
func FromProto(p *goldmanepb.Flow) Flow {
	k := p.GetKey()
	return Flow{
		Src: Endpoint{Namespace: k.GetSourceNamespace(), Name: k.GetSourceName(),
			Type: endpointType(k.GetSourceType()), Labels: labels(p.GetSourceLabels())},
		Dst: Endpoint{Namespace: k.GetDestNamespace(), Name: k.GetDestName(),
			Type: endpointType(k.GetDestType()), Labels: labels(p.GetDestLabels())},
		Port:     int(k.GetDestPort()),
		Protocol: k.GetProto(),
		Service: Service{Namespace: k.GetDestServiceNamespace(), Name: k.GetDestServiceName(),
			PortName: k.GetDestServicePortName(), Port: int(k.GetDestServicePort())},
		Reporter:    reporter(k.GetReporter()),
		Action:      action(k.GetAction()),
		Enforced:    trace(k.GetPolicies().GetEnforcedPolicies()),
		Pending:     trace(k.GetPolicies().GetPendingPolicies()),
		Start:       time.Unix(p.GetStartTime(), 0).UTC(),
		End:         time.Unix(p.GetEndTime(), 0).UTC(),
		Connections: p.GetNumConnectionsStarted(),
	}
}

func trace(hits []*goldmanepb.PolicyHit) []Hit {
	if len(hits) == 0 {
		return nil
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = hit(h)
	}
	return out
}

func hit(h *goldmanepb.PolicyHit) Hit {
	out := Hit{
		Kind:        kindName(h.GetKind()),
		Namespace:   h.GetNamespace(),
		Tier:        h.GetTier(),
		Action:      action(h.GetAction()),
		PolicyIndex: int(h.GetPolicyIndex()),
		RuleIndex:   int(h.GetRuleIndex()),
	}
	out.Name = policyName(out.Kind, out.Tier, h.GetName())
	if t := h.GetTrigger(); t != nil {
		trigger := hit(t)
		out.Trigger = &trigger
	}
	return out
}

// policyName strips the prefixes of Felix's internal policy names should
// a Goldmane leave them in: "staged:" and, for Calico's own kinds, the
// "<tier>." that Calico 3.29 to 3.31 put before the names of tiered
// policies (goldmane/proto/methods.go, HitFromString, strips both).
// Kubernetes names are kept whole: they may hold dots.
func policyName(kind, tier, name string) string {
	name = strings.TrimPrefix(name, "staged:")
	switch kind {
	case "GlobalNetworkPolicy", "CalicoNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedNetworkPolicy":
		if tier != "" {
			name = strings.TrimPrefix(name, tier+".")
		}
	}
	return name
}

func kindName(k goldmanepb.PolicyKind) string {
	if k == goldmanepb.PolicyKind_KindUnspecified {
		return ""
	}
	return k.String()
}

func endpointType(t goldmanepb.EndpointType) string {
	if t == goldmanepb.EndpointType_EndpointTypeUnspecified {
		return ""
	}
	return t.String()
}

func reporter(r goldmanepb.Reporter) Reporter {
	switch r {
	case goldmanepb.Reporter_Src:
		return ReporterSrc
	case goldmanepb.Reporter_Dst:
		return ReporterDst
	}
	return ""
}

func action(a goldmanepb.Action) string {
	if a == goldmanepb.Action_ActionUnspecified {
		return ""
	}
	return strings.ToLower(a.String())
}

// labels reads Goldmane's "key=value" labels.
func labels(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	out := make(map[string]string, len(list))
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}
