package evaluator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// Match is the three-valued answer to "does this match?".
type Match int8

// The answers.
const (
	No Match = iota
	Yes
	Unknown
)

func (m Match) String() string {
	return [...]string{"no", "yes", "unknown"}[m]
}

// matcher accumulates the result of several criteria that must all hold:
// one No decides, otherwise one Unknown does.
type matcher struct {
	result Match
	reason string
}

func newMatcher() matcher { return matcher{result: Yes} }

// add records a criterion; it returns false once the answer is No.
func (m *matcher) add(r Match, reason string) bool {
	switch r {
	case No:
		m.result, m.reason = No, ""
		return false
	case Unknown:
		if m.result == Yes {
			m.result, m.reason = Unknown, reason
		}
	}
	return true
}

// Traffic is what the evaluator knows of a connection at one port.
type Traffic struct {
	// Protocol is TCP, UDP or SCTP.
	Protocol string
	// Port is the destination port (after any DNAT: the pod's port).
	Port uint16
	// Family is 4, 6, or 0 when neither end's address is known.
	Family int
}

// RuleMatches reports whether rule index of policy p, for direction dir,
// matches traffic between local (the endpoint the policy applies to) and
// peer (the other end), and why not when it cannot tell. It is the
// building block for questions about one rule, such as whether a policy
// opens a namespace to another project.
func (ix *Index) RuleMatches(p *Policy, dir calico.PolicyType, index int, local, peer *Endpoint, t Traffic) (Match, string) {
	cp, ok := ix.byPolicy[p]
	if !ok {
		return Unknown, fmt.Sprintf("%s is not in this index (pass the policies Selecting returns)", p)
	}
	rules := cp.rules(dir)
	if index < 0 || index >= len(rules) {
		return Unknown, fmt.Sprintf("%s has no %s rule %d", p, strings.ToLower(string(dir)), index)
	}
	return ix.ruleMatch(rules[index], local, peer, t)
}

// ruleMatch matches one rule as Felix renders it for the traffic's IP
// family (felix/rules/policy.go): every criterion must hold.
func (ix *Index) ruleMatch(r *rule, local, peer *Endpoint, t Traffic) (Match, string) {
	if r.invalid != "" {
		return Unknown, r.invalid
	}
	src, dst := peer, local
	if r.dir == calico.Egress {
		src, dst = local, peer
	}
	m := newMatcher()
	if !m.add(familyMatch(r, t)) ||
		!m.add(protocolMatch(r, t)) ||
		!m.add(ix.portsMatch(&r.dst, dst, t, r.protocol)) ||
		!m.add(sourcePortsMatch(&r.src)) ||
		!m.add(ix.netsMatch(&r.src, src, t.Family)) ||
		!m.add(ix.netsMatch(&r.dst, dst, t.Family)) ||
		!m.add(ix.selectorMatch(&r.src, src)) ||
		!m.add(ix.selectorMatch(&r.dst, dst)) ||
		!m.add(ix.serviceMatch(&r.src, src, t, false)) ||
		!m.add(ix.serviceMatch(&r.dst, dst, t, true)) {
		return No, ""
	}
	if m.result == Yes && r.unmodelled != "" {
		return Unknown, r.unmodelled
	}
	return m.result, m.reason
}

// familyMatch applies ipVersion and Felix's rendering of a rule per IP
// family (FilterRuleToIPVersion): nets of the other family are left out,
// and a rule whose nets or notNets were all of the other family, or whose
// notNets hold the family's catch-all, is not rendered at all.
func familyMatch(r *rule, t Traffic) (Match, string) {
	needsFamily := r.ipVersion != 0 || r.src.hasNets || r.dst.hasNets
	if !needsFamily {
		return Yes, ""
	}
	if t.Family == 0 {
		return Unknown, "the rule depends on the IP family, and neither end's address is known"
	}
	if r.ipVersion != 0 && r.ipVersion != t.Family {
		return No, ""
	}
	for _, e := range []*entity{&r.src, &r.dst} {
		nets, kept := e.netsOf(t.Family)
		if len(e.nets) > 0 && len(nets) == 0 {
			return No, ""
		}
		if len(e.notNets) > 0 {
			if len(kept) == 0 {
				return No, ""
			}
			for _, p := range kept {
				if p.Bits() == 0 {
					return No, ""
				}
			}
		}
	}
	return Yes, ""
}

// familyNets are an entity's nets and notNets of one IP family.
type familyNets struct{ nets, notNets []netip.Prefix }

// netsOf returns the entity's nets and notNets of an IP family (4, else 6).
func (e *entity) netsOf(family int) (nets, notNets []netip.Prefix) {
	f := e.byFamily[1]
	if family == 4 {
		f = e.byFamily[0]
	}
	return f.nets, f.notNets
}

func ofFamily(nets []netip.Prefix, family int) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range nets {
		if p.Addr().Is4() == (family == 4) {
			out = append(out, p)
		}
	}
	return out
}

// protocolNumbers are the protocols Calico knows by name.
var protocolNumbers = map[string]uint8{"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "SCTP": 132, "UDPLITE": 136}

func protocolIs(p calico.Protocol, name string) bool {
	if p.Name != "" {
		return strings.EqualFold(p.Name, name)
	}
	return protocolNumbers[name] == p.Number
}

func protocolMatch(r *rule, t Traffic) (Match, string) {
	if r.protocol != nil && !protocolIs(*r.protocol, t.Protocol) {
		return No, ""
	}
	if r.notProtocol != nil && protocolIs(*r.notProtocol, t.Protocol) {
		return No, ""
	}
	return Yes, ""
}

// portsMatch matches destination ports: numbers and ranges, or names
// resolved on the destination pod's container ports with the traffic's
// protocol (felix/calc/rule_scanner.go renders named ports as sets of
// address, protocol and port).
func (ix *Index) portsMatch(e *entity, dst *Endpoint, t Traffic, ruleProtocol *calico.Protocol) (Match, string) {
	if !e.hasPort {
		return Yes, ""
	}
	in := func(ports []calico.Port) (Match, string) {
		result, reason := No, ""
		for _, p := range ports {
			if p.Name == "" {
				if t.Port >= p.Min && t.Port <= p.Max {
					return Yes, ""
				}
				continue
			}
			switch m, why := namedPort(p.Name, dst, t); m {
			case Yes:
				return Yes, ""
			case Unknown:
				result, reason = Unknown, why
			}
		}
		return result, reason
	}
	if len(e.ports) > 0 {
		if m, why := in(e.ports); m != Yes {
			return m, why
		}
	}
	if len(e.notPorts) > 0 {
		switch m, why := in(e.notPorts); m {
		case Yes:
			return No, ""
		case Unknown:
			return Unknown, why
		}
	}
	return Yes, ""
}

func namedPort(name string, dst *Endpoint, t Traffic) (Match, string) {
	if dst.Kind != PodEndpoint {
		return No, ""
	}
	if dst.Placeholder {
		return Unknown, fmt.Sprintf("named port %q: the namespace has no pod whose ports could be read", name)
	}
	for _, p := range dst.Ports {
		if p.Name == name && strings.EqualFold(p.Protocol, t.Protocol) && p.Port == t.Port {
			return Yes, ""
		}
	}
	return No, ""
}

// sourcePortsMatch: the source port of a connection is chosen by the
// client and is not known.
func sourcePortsMatch(e *entity) (Match, string) {
	if e.hasPort {
		return Unknown, "the rule matches source ports, and a connection's source port is not known"
	}
	return Yes, ""
}

// netsMatch matches nets and notNets against an endpoint's address.
func (ix *Index) netsMatch(e *entity, ep *Endpoint, family int) (Match, string) {
	if !e.hasNets {
		return Yes, ""
	}
	nets, notNets := e.netsOf(family)
	addr, ok := ep.addr(family)
	if !ok {
		// A pod whose address is unknown was given none of the addresses the
		// cluster already gave out, so single addresses of those never match
		// it. Anything wider cannot be decided.
		why := fmt.Sprintf("the rule matches addresses, and the address of %s is not known", ep)
		if len(nets) > 0 && !ix.allAllocated(nets) {
			return Unknown, why
		}
		if len(nets) > 0 {
			return No, ""
		}
		if !ix.allAllocated(notNets) {
			return Unknown, why
		}
		return Yes, ""
	}
	if len(nets) > 0 && !slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(addr) }) {
		return No, ""
	}
	if slices.ContainsFunc(notNets, func(p netip.Prefix) bool { return p.Contains(addr) }) {
		return No, ""
	}
	return Yes, ""
}

func (ix *Index) allAllocated(nets []netip.Prefix) bool {
	for _, p := range nets {
		if !p.IsSingleIP() || !ix.allocated[p.Addr()] {
			return false
		}
	}
	return true
}

// selectorMatch matches selector and notSelector. A selector matches the
// endpoints whose labels it selects and the addresses of the network sets
// it selects; an address that is no endpoint matches only through
// network sets (felix/calc/rule_scanner.go: selectors become IP sets).
func (ix *Index) selectorMatch(e *entity, ep *Endpoint) (Match, string) {
	if e.sel == nil && e.notSel == nil {
		return Yes, ""
	}
	if e.sel != nil {
		if m, why := ix.inSelected(e.sel, ep); m != Yes {
			return m, why
		}
	}
	if e.notSel != nil {
		switch m, why := ix.inSelected(e.notSel, ep); m {
		case Yes:
			return No, ""
		case Unknown:
			return Unknown, why
		}
	}
	return Yes, ""
}

// inSelected reports whether an endpoint's address is in the IP set of a
// selector.
func (ix *Index) inSelected(s *selector, ep *Endpoint) (Match, string) {
	switch ep.Kind {
	case PodEndpoint:
		if s.readsNS && ep.nsUnknown {
			return Unknown, fmt.Sprintf("the namespace of %s was not read, and a selector reads its labels", ep)
		}
		if s.readsSA && ep.saUnknown {
			return Unknown, fmt.Sprintf("the service account of %s was not read, and a selector reads its labels", ep)
		}
		if s.Matches(ep.Labels) {
			return Yes, ""
		}
	case HostEndpointKind:
		if len(ix.hostEndpoints) > 0 {
			return Unknown, "the cluster has host endpoints, which the evaluator does not model"
		}
	}
	return ix.inNetworkSets(s, ep)
}

func (ix *Index) inNetworkSets(s *selector, ep *Endpoint) (Match, string) {
	result, reason := No, ""
	for i := range ix.netsets {
		ns := &ix.netsets[i]
		if !s.Matches(ns.labels) {
			continue
		}
		if len(ep.Addrs) == 0 {
			result, reason = Unknown, fmt.Sprintf("network set %s is selected, and the address of %s is not known", ns.Name, ep)
			continue
		}
		for _, a := range ep.Addrs {
			if slices.ContainsFunc(ns.Nets, func(p netip.Prefix) bool { return p.Contains(a) }) {
				return Yes, ""
			}
		}
	}
	return result, reason
}

// serviceMatch matches a Service by name: as a destination, the address,
// protocol and port of one of its endpoints; as a source, the address of
// one (felix/calc/rule_scanner.go, felix/serviceindex).
func (ix *Index) serviceMatch(e *entity, ep *Endpoint, t Traffic, destination bool) (Match, string) {
	if e.service == nil {
		return Yes, ""
	}
	if e.serviceNever {
		return No, ""
	}
	name := e.service.Namespace + "/" + e.service.Name
	svc, ok := ix.services[name]
	if !ok {
		return Unknown, fmt.Sprintf("the rule matches Service %s, whose EndpointSlices were not read", name)
	}
	if len(ep.Addrs) == 0 {
		return Unknown, fmt.Sprintf("the rule matches Service %s, and the address of %s is not known", name, ep)
	}
	for _, se := range svc.Endpoints {
		if !slices.Contains(ep.Addrs, se.Addr) {
			continue
		}
		if !destination || (se.Port == t.Port && strings.EqualFold(se.Protocol, t.Protocol)) {
			return Yes, ""
		}
	}
	return No, ""
}
