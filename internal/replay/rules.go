package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// compileRule reads one Calico rule of a policy in namespace policyNS
// ("" for a GlobalNetworkPolicy), the way Calico converts it for Felix
// (libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go).
func compileRule(r calicoRule, policyNS string) (rule, error) {
	out := rule{action: r.Action}
	switch r.Action {
	case actionAllow, actionDeny, actionPass, actionLog:
	default:
		return out, fmt.Errorf("action %q is not Allow, Deny, Pass or Log", r.Action)
	}
	for field, raw := range map[string]json.RawMessage{"icmp": r.ICMP, "notICMP": r.NotICMP, "http": r.HTTP} {
		if isSet(raw) {
			return out, fmt.Errorf("%s matches are not modelled", field)
		}
	}
	if r.IPVersion != nil {
		if *r.IPVersion != 4 && *r.IPVersion != 6 {
			return out, fmt.Errorf("ipVersion %d is neither 4 nor 6", *r.IPVersion)
		}
		out.ipVersion = *r.IPVersion
	}
	var err error
	if out.protocol, err = parseProtocol(r.Protocol); err != nil {
		return out, fmt.Errorf("protocol: %w", err)
	}
	if out.notProtocol, err = parseProtocol(r.NotProtocol); err != nil {
		return out, fmt.Errorf("notProtocol: %w", err)
	}
	if len(r.Source.Ports) > 0 || len(r.Source.NotPorts) > 0 {
		return out, errors.New("source ports are not modelled (a connection is judged by its destination port)")
	}
	if out.src, err = compileEntity(r.Source, policyNS); err != nil {
		return out, fmt.Errorf("source: %w", err)
	}
	if out.dst, err = compileEntity(r.Destination, policyNS); err != nil {
		return out, fmt.Errorf("destination: %w", err)
	}
	// Calico accepts ports only with a protocol that has them (its
	// validator); Felix could not render such a rule.
	if !out.dst.ports.empty() || !out.dst.notPorts.empty() {
		if out.protocol == nil || !hasPorts(*out.protocol) {
			return out, errors.New("ports need protocol TCP, UDP or SCTP")
		}
	}
	return out, nil
}

func isSet(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

func compileEntity(e calicoEntity, policyNS string) (entity, error) {
	var out entity
	var err error
	if out.nets, err = parseNets(e.Nets); err != nil {
		return out, fmt.Errorf("nets: %w", err)
	}
	if out.notNets, err = parseNets(e.NotNets); err != nil {
		return out, fmt.Errorf("notNets: %w", err)
	}
	if out.selector, err = entitySelector(policyNS, e.Selector, e.NamespaceSelector, e.NotSelector, e.ServiceAccounts); err != nil {
		return out, err
	}
	if out.notSelector, err = parseOptional(e.NotSelector); err != nil {
		return out, fmt.Errorf("notSelector: %w", err)
	}
	if out.ports, err = parsePorts(e.Ports); err != nil {
		return out, fmt.Errorf("ports: %w", err)
	}
	if out.notPorts, err = parsePorts(e.NotPorts); err != nil {
		return out, fmt.Errorf("notPorts: %w", err)
	}
	if s := e.Services; s != nil {
		// Calico's validator: services stand alone, and a
		// GlobalNetworkPolicy must say the Service's namespace.
		if len(e.Nets)+len(e.NotNets)+len(e.Ports)+len(e.NotPorts) > 0 || e.Selector != "" || e.NotSelector != "" || e.NamespaceSelector != "" || e.ServiceAccounts != nil {
			return out, errors.New("services cannot be combined with nets, selectors, service accounts or ports")
		}
		ns := s.Namespace
		if ns == "" {
			ns = policyNS
		}
		if s.Name == "" || ns == "" {
			return out, errors.New("services needs a name and, in a GlobalNetworkPolicy, a namespace")
		}
		out.service = &serviceRef{namespace: ns, name: s.Name}
	}
	return out, nil
}

// parseNets reads CIDRs, or single addresses as Calico's ParseCIDROrIP
// accepts them, as networks (the address masked).
func parseNets(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := parseNet(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	return p.Masked(), nil
}

// parsePorts reads Calico ports: a number, "a:b" for a range, or the name
// of a container port.
func parsePorts(list []json.RawMessage) (portList, error) {
	var out portList
	for _, raw := range list {
		var n float64
		if err := json.Unmarshal(raw, &n); err == nil {
			r, err := portNumber(strconv.FormatFloat(n, 'f', -1, 64))
			if err != nil {
				return out, err
			}
			out.ranges = append(out.ranges, portRange{r, r})
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return out, fmt.Errorf("%s is neither a number nor a string", raw)
		}
		if err := out.add(s); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (l *portList) add(s string) error {
	if lo, hi, ok := strings.Cut(s, ":"); ok {
		a, err := portNumber(lo)
		if err != nil {
			return err
		}
		b, err := portNumber(hi)
		if err != nil {
			return err
		}
		if a > b {
			return fmt.Errorf("port range %q is reversed", s)
		}
		l.ranges = append(l.ranges, portRange{a, b})
		return nil
	}
	if n, err := portNumber(s); err == nil {
		l.ranges = append(l.ranges, portRange{n, n})
		return nil
	}
	if s == "" || strings.ContainsAny(s, " \t") {
		return fmt.Errorf("port %q is not a number, a range or a port name", s)
	}
	l.names = append(l.names, s)
	return nil
}

func portNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
	}
	return uint16(n), nil
}

// IP protocol numbers of the names Calico accepts (numorstring.Protocol).
var protocolNumbers = map[string]uint8{
	"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "udplite": 136,
}

func hasPorts(p uint8) bool { return p == 6 || p == 17 || p == 132 }

// parseProtocol reads a protocol name or number (nil when left out).
func parseProtocol(raw json.RawMessage) (*uint8, error) {
	if !isSet(raw) {
		return nil, nil
	}
	var n uint8
	if err := json.Unmarshal(raw, &n); err == nil {
		return &n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s is neither a name nor a number from 1 to 255", raw)
	}
	p, err := protocolByName(s)
	return &p, err
}

func protocolByName(s string) (uint8, error) {
	if n, ok := protocolNumbers[strings.ToLower(s)]; ok {
		return n, nil
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), nil
	}
	return 0, fmt.Errorf("%q is not a protocol Calico knows", s)
}
