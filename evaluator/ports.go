package evaluator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// Partial is the verdict over all ports when some are allowed and others
// are not.
const Partial Verdict = "partial"

// PortRange is an inclusive range of ports.
type PortRange struct{ Min, Max uint16 }

func (r PortRange) String() string {
	if r.Min == r.Max {
		return fmt.Sprint(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// Segment is a range of ports that every relevant rule treats alike, and
// the result for them.
type Segment struct {
	Ports  PortRange
	Result Result
}

// Summary is a connection evaluated on every port of a protocol.
type Summary struct {
	Protocol string
	// Verdict is Allow (all ports), Deny (none), Partial (Allowed lists
	// them) or Indeterminate (some ports cannot be decided).
	Verdict Verdict
	Allowed []PortRange
	// Undecided lists the ports that cannot be decided.
	Undecided []PortRange
	Segments  []Segment
}

// AllowedText lists the allowed ports as "TCP 53, 80".
func (s Summary) AllowedText() string { return portsText(s.Protocol, s.Allowed) }

// UndecidedText lists the ports that cannot be decided as "TCP 53, 80".
func (s Summary) UndecidedText() string { return portsText(s.Protocol, s.Undecided) }

func portsText(protocol string, ranges []PortRange) string {
	return protocol + " " + RangesText(ranges)
}

// RangesText lists port ranges as "53, 80, 8000-8080".
func RangesText(ranges []PortRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// EvaluateAllPorts evaluates a connection on every port of a protocol. The
// ports are cut into segments at every port or range the rules of both
// sides mention (named ports resolved on the destination, and the ports of
// Services matched by name); all ports of a segment are treated alike, so
// one evaluation per segment decides it.
func (ix *Index) EvaluateAllPorts(src, dst *Endpoint, protocol string) Summary {
	protocol = strings.ToUpper(protocol)
	cuts := newPortCuts()
	for _, side := range []struct {
		ep  *Endpoint
		dir calico.PolicyType
	}{{src, calico.Egress}, {dst, calico.Ingress}} {
		if side.ep.Kind != PodEndpoint || side.ep.Unknown != "" {
			continue
		}
		ix.sidePortCuts(side.ep, dst, side.dir, protocol, cuts)
	}
	s := Summary{Protocol: protocol}
	for _, r := range portSegments(cuts) {
		s.Segments = append(s.Segments, Segment{Ports: r, Result: ix.Evaluate(src, dst, protocol, r.Min)})
	}
	s.summarize()
	return s
}

// newPortCuts starts a set of segment boundaries with the whole port
// range: a boundary is the first port of a segment, 65536 closes the last.
func newPortCuts() map[int]bool {
	return map[int]bool{1: true, 65536: true}
}

// sidePortCuts adds the boundaries of the ports that the rules of every
// policy selecting local in direction dir match on dst.
func (ix *Index) sidePortCuts(local, dst *Endpoint, dir calico.PolicyType, protocol string, cuts map[int]bool) {
	tiers, err := ix.selecting(local, dir)
	if err != nil {
		return
	}
	for _, t := range tiers {
		for _, cp := range t.policies {
			for _, r := range cp.rules(dir) {
				ix.portCuts(r.dst, dst, protocol, cuts)
			}
		}
	}
}

// portSegments cuts the port range at the boundaries, in order.
func portSegments(cuts map[int]bool) []PortRange {
	bounds := make([]int, 0, len(cuts))
	for c := range cuts {
		bounds = append(bounds, c)
	}
	slices.Sort(bounds)
	out := make([]PortRange, 0, len(bounds)-1)
	for i := 0; i+1 < len(bounds); i++ {
		out = append(out, PortRange{uint16(bounds[i]), uint16(bounds[i+1] - 1)})
	}
	return out
}

// portCuts adds the boundaries of the ports a rule's destination matches.
func (ix *Index) portCuts(e entity, dst *Endpoint, protocol string, cuts map[int]bool) {
	add := func(min, max uint16) {
		cuts[int(min)] = true
		cuts[int(max)+1] = true
	}
	for _, p := range append(slices.Clone(e.ports), e.notPorts...) {
		if p.Name == "" {
			add(p.Min, p.Max)
			continue
		}
		for _, np := range dst.Ports {
			if np.Name == p.Name && strings.EqualFold(np.Protocol, protocol) {
				add(np.Port, np.Port)
			}
		}
	}
	if e.service != nil {
		if svc, ok := ix.services[e.service.Namespace+"/"+e.service.Name]; ok {
			for _, se := range svc.Endpoints {
				add(se.Port, se.Port)
			}
		}
	}
}

func (s *Summary) summarize() {
	allowed, denied, undecided := 0, 0, 0
	for _, seg := range s.Segments {
		switch seg.Result.Verdict {
		case Allow:
			allowed++
			s.Allowed = appendRange(s.Allowed, seg.Ports)
		case Deny:
			denied++
		default:
			undecided++
			s.Undecided = appendRange(s.Undecided, seg.Ports)
		}
	}
	s.Verdict = verdictOf(allowed, denied, undecided)
}

// verdictOf sums up the verdicts of several port segments (or pairs):
// undecided when any is, allowed when none is denied, denied when none is
// allowed, else partial.
func verdictOf(allowed, denied, undecided int) Verdict {
	switch {
	case undecided > 0:
		return Indeterminate
	case denied == 0:
		return Allow
	case allowed == 0:
		return Deny
	}
	return Partial
}

// appendRange adds r to sorted ranges, merging it with the last one when
// they touch.
func appendRange(ranges []PortRange, r PortRange) []PortRange {
	if n := len(ranges); n > 0 && int(ranges[n-1].Max)+1 == int(r.Min) {
		ranges[n-1].Max = r.Max
		return ranges
	}
	return append(ranges, r)
}
