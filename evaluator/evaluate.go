package evaluator

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// maxForks bounds how many undecidable rules one side follows both ways.
const maxForks = 32

// Evaluate evaluates a connection from src to dst at one destination port.
func (ix *Index) Evaluate(src, dst *Endpoint, protocol string, port uint16) Result {
	r := Result{Src: src, Dst: dst, Traffic: Traffic{Protocol: strings.ToUpper(protocol), Port: port}}
	r.Egress = Side{Direction: calico.Egress, Endpoint: src}
	r.Ingress = Side{Direction: calico.Ingress, Endpoint: dst}
	family, err := connectionFamily(src, dst)
	if err != nil {
		return r.indeterminate(err.Error())
	}
	r.Traffic.Family = family
	if len(ix.unsupported) > 0 {
		return r.indeterminate(ix.unsupported[0])
	}
	for _, ep := range []*Endpoint{src, dst} {
		if ep.Unknown != "" {
			return r.indeterminate(ep.Unknown)
		}
	}
	r.Egress = ix.side(calico.Egress, src, dst, r.Traffic)
	r.Ingress = ix.side(calico.Ingress, dst, src, r.Traffic)
	switch {
	case r.Egress.Verdict == Deny:
		r.Verdict, r.Reason = Deny, "egress of "+src.String()+" is denied: "+r.Egress.Reason
	case r.Ingress.Verdict == Deny:
		r.Verdict, r.Reason = Deny, "ingress of "+dst.String()+" is denied: "+r.Ingress.Reason
	case r.Egress.Verdict == Indeterminate:
		r.Verdict, r.Reason = Indeterminate, r.Egress.Reason
	case r.Ingress.Verdict == Indeterminate:
		r.Verdict, r.Reason = Indeterminate, r.Ingress.Reason
	default:
		r.Verdict, r.Reason = Allow, "egress: "+r.Egress.Reason+"; ingress: "+r.Ingress.Reason
	}
	return r
}

func (r Result) indeterminate(why string) Result {
	r.Verdict, r.Reason = Indeterminate, why
	r.Egress.Verdict, r.Ingress.Verdict = Indeterminate, Indeterminate
	return r
}

// connectionFamily picks the IP family the connection uses: one both ends
// have, IPv4 first; an end whose address is unknown follows the other.
func connectionFamily(src, dst *Endpoint) (int, error) {
	s4, s6 := src.families()
	d4, d6 := dst.families()
	sKnown, dKnown := s4 || s6, d4 || d6
	switch {
	case sKnown && dKnown:
		if s4 && d4 {
			return 4, nil
		}
		if s6 && d6 {
			return 6, nil
		}
		return 0, fmt.Errorf("%s and %s have no address of the same IP family", src, dst)
	case sKnown:
		return pickFamily(s4), nil
	case dKnown:
		return pickFamily(d4), nil
	}
	return 0, nil
}

func pickFamily(has4 bool) int {
	if has4 {
		return 4
	}
	return 6
}

// side evaluates one direction of local's traffic with peer.
func (ix *Index) side(dir calico.PolicyType, local, peer *Endpoint, t Traffic) Side {
	s := Side{Direction: dir, Endpoint: local}
	if local.Kind == HostEndpointKind && len(ix.hostEndpoints) > 0 {
		return s.undecided("the cluster has host endpoints, whose policy the evaluator does not model")
	}
	if local.Kind != PodEndpoint {
		s.Verdict, s.Reason = Allow, notPolicedReason(local)
		return s
	}
	if dir == calico.Ingress && peer.Kind == HostEndpointKind && peer.Node == local.Node {
		s.Verdict, s.Reason = Allow, "Felix does not police traffic from a host to the pods on that host (felix/rules/static.go)"
		return s
	}
	tiers, err := ix.selecting(local, dir)
	s.Policed = true
	if err != nil {
		return s.undecided(err.Error())
	}
	s.Tiers = publicTiers(tiers)
	candidates := []*Endpoint{peer}
	if dir == calico.Ingress && len(peer.SourceAddrs) > 0 {
		candidates = peer.candidates(t.Family)
	}
	var first Side
	for i, p := range candidates {
		w := &walk{ix: ix, dir: dir, local: local, peer: p, t: t, tiers: tiers}
		o := w.from(0, 0, 0, nil, nil)
		out := s
		out.Verdict, out.Reason, out.Steps, out.Hits, out.NotReached = o.verdict, o.reason, o.steps, o.hits, o.notReached
		if i == 0 {
			first = out
			continue
		}
		if out.Verdict != first.Verdict {
			return s.undecided(fmt.Sprintf("traffic from %s may come from %s or %s (tunnel or node address), and the two are treated differently", peer, candidates[0].Addrs[0], p.Addrs[0]))
		}
	}
	if dir == calico.Egress && peer.Kind == HostEndpointKind && peer.Node == local.Node && first.Verdict == Allow {
		return ix.toOwnHost(first)
	}
	return first
}

// toOwnHost applies Felix's DefaultEndpointToHostAction to traffic from a
// pod to its own node, which its egress policy allowed
// (felix/rules/static.go, filterWorkloadToHostChain).
func (ix *Index) toOwnHost(s Side) Side {
	switch strings.ToLower(ix.endpointToHost) {
	case "accept":
		s.Reason += "; to its own node, FelixConfiguration's defaultEndpointToHostAction Accept lets it through"
		return s
	case "drop":
		s.Verdict, s.Reason = Deny, "traffic from a pod to its own node: FelixConfiguration's defaultEndpointToHostAction is Drop"
		return s
	case "return":
		return s.undecided("traffic from a pod to its own node: FelixConfiguration's defaultEndpointToHostAction Return leaves it to the host's own firewall, which the evaluator does not read")
	}
	return s.undecided("traffic from a pod to its own node also passes Felix's defaultEndpointToHostAction, and no FelixConfiguration default setting it was read")
}

func (s Side) undecided(why string) Side {
	s.Verdict, s.Reason = Indeterminate, why
	return s
}

func notPolicedReason(ep *Endpoint) string {
	switch ep.Kind {
	case HostEndpointKind:
		return ep.String() + " is a host, not a Calico workload endpoint: no policy of its own"
	default:
		return ep.String() + " is outside the cluster's endpoints: no policy of its own"
	}
}

// candidates returns copies of a host endpoint, one per source address of
// the family.
func (e *Endpoint) candidates(family int) []*Endpoint {
	var out []*Endpoint
	for _, a := range e.SourceAddrs {
		if family != 0 && a.Is4() != (family == 4) {
			continue
		}
		c := *e
		c.Addrs = []netip.Addr{a}
		out = append(out, &c)
	}
	if len(out) == 0 {
		return []*Endpoint{e}
	}
	return out
}

func publicTiers(tiers []selectedTier) []TierPolicies {
	out := make([]TierPolicies, len(tiers))
	for i, t := range tiers {
		out[i] = TierPolicies{Tier: t.tier.name, Order: t.tier.order, DefaultAction: t.tier.defaultAction}
		for _, p := range t.policies {
			out[i].Policies = append(out[i].Policies, p.Policy)
		}
	}
	return out
}
