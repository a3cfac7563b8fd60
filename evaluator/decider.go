package evaluator

import (
	"cmp"
	"fmt"
)

// Decider names what decided a result: the policy whose rule decided, or
// the end of a tier with the policy it is charged to, or the profile.
// For an allowed connection it names the destination's side when that
// side is policed.
func Decider(r Result) string {
	side := r.Ingress
	switch {
	case r.Verdict == Indeterminate:
		return "undecided"
	case r.Egress.Verdict == Deny:
		side = r.Egress
	case r.Ingress.Verdict == Deny:
	case !r.Ingress.Policed || len(r.Ingress.Tiers) == 0:
		side = r.Egress
	}
	return decidedBy(side)
}

// sideDecider names what decided a side, as Decider does for a result.
func sideDecider(s Side) string {
	if s.Verdict == Indeterminate {
		return "undecided"
	}
	return decidedBy(s)
}

// decidedBy names the policy whose rule made a side's last hit, or the
// policy an end-of-tier default is charged to (the last of that tier to
// select the endpoint), or "no policy" when the profile decided.
func decidedBy(s Side) string {
	if len(s.Hits) == 0 {
		return "no policy"
	}
	h := s.Hits[len(s.Hits)-1]
	switch h.Kind {
	case "Profile":
		return "no policy"
	case "EndOfTier":
		for i := len(s.Steps) - 1; i >= 0; i-- {
			if st := s.Steps[i]; st.Policy != nil && st.Tier == h.Tier {
				return fmt.Sprintf("%s (end of tier %s)", st.Policy, h.Tier)
			}
		}
	}
	for _, st := range s.Steps {
		if st.Policy != nil && st.Rule >= 0 && st.Action == h.Action && st.Policy.FlowLogName() == h.Name && st.Policy.Namespace == h.Namespace {
			return st.Policy.String()
		}
	}
	return h.Name
}

// combine joins the two sides of a pair as Evaluate does: a Deny on either
// side denies, else an undecided side leaves it undecided, else allowed;
// an allowed pair is charged to the destination's policies when they
// decided it.
func combine(egress, ingress *sideOutcome) pairResult {
	var p pairResult
	allowed, denied, undecided := 0, 0, 0
	i, j := 0, 0
	for i < len(egress.ranges) && j < len(ingress.ranges) {
		e, in := egress.ranges[i], ingress.ranges[j]
		lo := max(e.ports.Min, in.ports.Min)
		hi := min(e.ports.Max, in.ports.Max)
		switch {
		case e.verdict == Deny:
			denied++
			p.deniedBy = addNames(p.deniedBy, []string{e.decider})
		case in.verdict == Deny:
			denied++
			p.deniedBy = addNames(p.deniedBy, []string{in.decider})
		case e.verdict == Indeterminate || in.verdict == Indeterminate:
			undecided++
			if p.reason == "" {
				p.reason = cmp.Or(e.reason, in.reason)
			}
		default:
			allowed++
			p.ports = appendRange(p.ports, PortRange{lo, hi})
			d := e.decider
			if ingress.policed {
				d = in.decider
			}
			p.allowedBy = addNames(p.allowedBy, []string{d})
		}
		if e.ports.Max == hi {
			i++
		}
		if in.ports.Max == hi {
			j++
		}
	}
	p.verdict = verdictOf(allowed, denied, undecided)
	if p.verdict == Indeterminate || p.verdict == Allow {
		p.ports = nil
	}
	return p
}
