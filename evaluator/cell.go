package evaluator

import (
	"cmp"
	"slices"
)

// add counts n pod pairs with result r.
func (c *Cell) add(r *pairResult, n int) {
	c.Pairs += n
	if r == c.last {
		switch r.verdict {
		case Allow:
			c.Allowed += n
		case Partial:
			c.Allowed += n
			c.Partial += n
		case Deny:
			c.Denied += n
		default:
			c.Undecided += n
		}
		return
	}
	c.last = r
	switch r.verdict {
	case Allow, Partial:
		c.Allowed += n
	case Deny:
		c.Denied += n
	default:
		c.Undecided += n
		if c.Reason == "" {
			c.Reason = r.reason
		}
	}
	c.Ports = append(c.Ports, r.ports...)
	if r.verdict == Partial {
		c.Partial += n
	}
	c.AllowedBy = addNames(c.AllowedBy, r.allowedBy)
	c.DeniedBy = addNames(c.DeniedBy, r.deniedBy)
}

func addNames(to, names []string) []string {
	for _, n := range names {
		if len(to) < maxDeciders && !slices.Contains(to, n) {
			to = append(to, n)
		}
	}
	return to
}

// finish settles the verdict from the counts and merges the ports.
func (c *Cell) finish() {
	c.last = nil
	switch {
	case c.Pairs == 0:
		c.Verdict = ""
	case c.Undecided > 0:
		c.Verdict = Indeterminate
	case c.Denied == c.Pairs:
		c.Verdict = Deny
	case c.Allowed == c.Pairs && c.Partial == 0:
		c.Verdict = Allow
	default:
		c.Verdict = Partial
	}
	c.Ports = mergeRanges(c.Ports)
}

func mergeRanges(rs []PortRange) []PortRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Compare(a.Min, b.Min) })
	out := []PortRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if int(r.Min) <= int(last.Max)+1 {
			last.Max = max(last.Max, r.Max)
			continue
		}
		out = append(out, r)
	}
	return out
}
