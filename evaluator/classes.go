package evaluator

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// Classes of endpoints that every policy treats alike. Two pods are alike
// when every comparison any selector makes gives the same answer on both
// endpoints' labels (for a key compared by equality or set membership,
// when both have the same one of the compared values, or both another
// value, or both no value), every address range a
// rule or network set names holds both or neither, and every named port
// and Service a rule names resolves alike for both. Namespace names count
// only where a selector names them (projectcalico.org/namespace,
// projectcalico.org/name), pod labels only where a selector reads them.

// classifier computes the signature of endpoints.
type classifier struct {
	// keys are the label keys selectors read; for each, the values that
	// ==, !=, in and not in compare with (a label value counts only as
	// which of them it is, if any) and the other comparisons.
	keys     []classKey
	prefixes []netip.Prefix
	ports    []string // named ports rules mention
	services []*ServiceEndpoints
	// byNode is set when hosts take part: the host's traffic to pods of
	// its own node is never policed, so pods differ by node.
	byNode bool
}

type classKey struct {
	key      string
	values   map[string]int
	patterns []calico.Term
	// presence is set when a comparison tells an absent label from one
	// with another value (has(), starts with...); ==, !=, in and not in
	// treat both alike.
	presence bool
}

func (ix *Index) newClassifier(byNode bool) *classifier {
	c := &classifier{byNode: byNode}
	keyIndex := map[string]int{}
	seenPattern := map[string]bool{}
	addSel := func(s *selector) {
		if s == nil {
			return
		}
		calico.Terms(s.Selector, func(t calico.Term) {
			i, ok := keyIndex[t.Key]
			if !ok {
				i = len(c.keys)
				keyIndex[t.Key] = i
				c.keys = append(c.keys, classKey{key: t.Key, values: map[string]int{}})
			}
			k := &c.keys[i]
			switch t.Op {
			case "has":
				k.presence = true
			case "==", "!=", "in", "not in":
				for _, v := range t.Values {
					if _, ok := k.values[v]; !ok {
						k.values[v] = len(k.values)
					}
				}
			default:
				k.presence = true
				id := t.Op + "\x00" + t.Values[0]
				if !seenPattern[t.Key+"\x00"+id] {
					seenPattern[t.Key+"\x00"+id] = true
					k.patterns = append(k.patterns, t)
				}
			}
		})
	}
	seenPrefix := map[netip.Prefix]bool{}
	addPrefixes := func(ps []netip.Prefix) {
		for _, p := range ps {
			if !seenPrefix[p] {
				seenPrefix[p] = true
				c.prefixes = append(c.prefixes, p)
			}
		}
	}
	seenPort := map[string]bool{}
	seenService := map[string]bool{}
	for _, cp := range ix.all {
		addSel(cp.selects)
		for _, r := range append(slices.Clone(cp.ingress), cp.egress...) {
			for _, e := range []*entity{&r.src, &r.dst} {
				addSel(e.sel)
				addSel(e.notSel)
				addPrefixes(e.nets)
				addPrefixes(e.notNets)
				for _, p := range append(slices.Clone(e.ports), e.notPorts...) {
					if p.Name != "" && !seenPort[p.Name] {
						seenPort[p.Name] = true
						c.ports = append(c.ports, p.Name)
					}
				}
				if e.service != nil {
					key := e.service.Namespace + "/" + e.service.Name
					if svc, ok := ix.services[key]; ok && !seenService[key] {
						seenService[key] = true
						c.services = append(c.services, svc)
					}
				}
			}
		}
	}
	for _, ns := range ix.netsets {
		addPrefixes(ns.Nets)
	}
	return c
}

// signature returns a string equal for endpoints that behave alike.
func (c *classifier) signature(ep *Endpoint) string {
	var b strings.Builder
	switch {
	case ep.Unknown != "":
		return "unknown:" + ep.Namespace + "/" + ep.Name
	case ep.Kind == HostEndpointKind:
		b.WriteString("host:" + ep.Node)
	case ep.Kind == ExternalEndpoint:
		return "external:" + ep.String()
	default:
		b.WriteString("pod:")
		if c.byNode {
			b.WriteString(ep.Node)
		}
	}
	if ep.Placeholder {
		b.WriteString("|placeholder")
	}
	if ep.nsUnknown {
		b.WriteString("|ns?")
	}
	if ep.saUnknown {
		b.WriteString("|sa?")
	}
	b.WriteByte('|')
	for _, k := range c.keys {
		v, present := ep.Labels[k.key]
		switch i, named := k.values[v]; {
		case !present && k.presence:
			b.WriteString("-,")
		case present && named:
			b.WriteString(strconv.Itoa(i) + ",")
		default:
			b.WriteString("*,")
		}
		for _, t := range k.patterns {
			if present && t.Matches(ep.Labels) {
				b.WriteByte('1')
			} else {
				b.WriteByte('0')
			}
		}
	}
	b.WriteByte('|')
	v4, v6 := ep.families()
	b.WriteString(strconv.FormatBool(v4) + strconv.FormatBool(v6))
	for _, p := range c.prefixes {
		in := slices.ContainsFunc(ep.Addrs, p.Contains)
		if in {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	b.WriteByte('|')
	for _, name := range c.ports {
		for _, p := range ep.Ports {
			if p.Name == name {
				b.WriteString(name + "=" + p.Protocol + strconv.Itoa(int(p.Port)) + ",")
			}
		}
	}
	b.WriteByte('|')
	for _, svc := range c.services {
		for _, se := range svc.Endpoints {
			if slices.Contains(ep.Addrs, se.Addr) {
				b.WriteString(svc.Namespace + "/" + svc.Name + ":" + se.Protocol + strconv.Itoa(int(se.Port)) + ",")
			}
		}
	}
	return b.String()
}
