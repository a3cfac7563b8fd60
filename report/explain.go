// Package report prints what the policy evaluator found: explanations of
// one connection (text that reads like a person explaining, or JSON in
// the shape of Calico's flow-log policy trace) and matrices of who can
// reach whom (text, CSV, JSON, a self-contained HTML page).
package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
)

// Explanation is everything explain prints.
type Explanation struct {
	// From and To are the endpoints as the user named them.
	From, To string
	// Policies says which policies were evaluated, in words.
	Policies string
	Protocol string
	// Port is 0 when every port was evaluated: then Summary is set,
	// otherwise Result.
	Port    uint16
	Result  *evaluator.Result
	Summary *evaluator.Summary
	Notes   []string
	// Owners names the policies of others than calico-pni and the users,
	// such as Rancher's own isolation.
	Owners Owners
}

// ExplainText prints an explanation for people.
func ExplainText(w io.Writer, e Explanation) error {
	p := &printer{w: w, owners: e.Owners}
	if e.Result != nil {
		r := e.Result
		p.line("Connection: %s -> %s, %s %d", r.Src, r.Dst, r.Traffic.Protocol, r.Traffic.Port)
		p.line("Policies:   %s", e.Policies)
		p.line("Verdict:    %s: %s.", headline(r.Verdict), r.Reason)
		p.result(r, "")
	} else {
		s := e.Summary
		src, dst := s.Segments[0].Result.Src, s.Segments[0].Result.Dst
		p.line("Connection: %s -> %s, %s, every port", src, dst, s.Protocol)
		p.line("Policies:   %s", e.Policies)
		p.line("Verdict:    %s.", summaryText(s))
		for _, g := range groupSegments(s.Segments) {
			p.line("")
			p.line("On %s %s: %s: %s.", s.Protocol, evaluator.RangesText(g.ports), headline(g.result.Verdict), g.result.Reason)
			p.result(&g.result, "  ")
		}
	}
	if len(e.Notes) > 0 {
		p.line("")
		for _, n := range e.Notes {
			p.line("Note: %s", n)
		}
	}
	return p.err
}

func headline(v evaluator.Verdict) string {
	switch v {
	case evaluator.Allow:
		return "ALLOWED"
	case evaluator.Deny:
		return "DENIED"
	case evaluator.Partial:
		return "PARTIAL"
	}
	return "INDETERMINATE"
}

func participle(v evaluator.Verdict) string {
	switch v {
	case evaluator.Allow:
		return "allowed"
	case evaluator.Deny:
		return "denied"
	}
	return "cannot be decided"
}

func summaryText(s *evaluator.Summary) string {
	switch s.Verdict {
	case evaluator.Allow:
		return "ALLOWED on every port"
	case evaluator.Deny:
		return "DENIED on every port"
	case evaluator.Partial:
		return "PARTIAL: allowed on " + s.AllowedText() + " only"
	}
	return "INDETERMINATE on " + s.UndecidedText()
}

// segmentGroup is port ranges that ended the same way.
type segmentGroup struct {
	ports  []evaluator.PortRange
	result evaluator.Result
}

// groupSegments merges segments whose evaluation is the same apart from
// the port, so that the explanation says each outcome once.
func groupSegments(segs []evaluator.Segment) []segmentGroup {
	var out []segmentGroup
	index := map[string]int{}
	for _, s := range segs {
		key := outcomeKey(s.Result)
		if i, ok := index[key]; ok {
			ports := out[i].ports
			if last := &ports[len(ports)-1]; int(last.Max)+1 == int(s.Ports.Min) {
				last.Max = s.Ports.Max
			} else {
				out[i].ports = append(ports, s.Ports)
			}
			continue
		}
		index[key] = len(out)
		out = append(out, segmentGroup{ports: []evaluator.PortRange{s.Ports}, result: s.Result})
	}
	return out
}

func outcomeKey(r evaluator.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s", r.Verdict, r.Reason)
	for _, s := range []evaluator.Side{r.Egress, r.Ingress} {
		b.WriteString("|" + s.Reason)
		for _, h := range s.Hits {
			fmt.Fprintf(&b, "|%s/%s/%s/%s/%s/%d/%d", h.Kind, h.Namespace, h.Name, h.Tier, h.Action, h.PolicyIndex, h.RuleIndex)
			if h.Trigger != nil {
				fmt.Fprintf(&b, "<%s/%s/%s", h.Trigger.Kind, h.Trigger.Namespace, h.Trigger.Name)
			}
		}
	}
	return b.String()
}

type printer struct {
	w      io.Writer
	owners Owners
	err    error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// result prints both sides.
func (p *printer) result(r *evaluator.Result, indent string) {
	for _, s := range []*evaluator.Side{&r.Egress, &r.Ingress} {
		p.line("")
		p.side(s, indent)
	}
}

func (p *printer) side(s *evaluator.Side, indent string) {
	dir := strings.ToLower(string(s.Direction))
	title := "Egress of " + s.Endpoint.String()
	if s.Direction == calico.Ingress {
		title = "Ingress of " + s.Endpoint.String()
	}
	if s.Verdict == "" {
		p.line("%s%s: not evaluated.", indent, title)
		return
	}
	if !s.Policed {
		p.line("%s%s: %s, not policed: %s.", indent, title, participle(s.Verdict), s.Reason)
		return
	}
	p.line("%s%s: %s", indent, title, participle(s.Verdict))
	if len(s.Tiers) == 0 && s.Verdict != evaluator.Indeterminate {
		p.line("%s  No policy selects it for %s: its namespace's profile (kns.%s) allows it.", indent, dir, s.Endpoint.Namespace)
		return
	}
	n := 0
	tier := ""
	for _, st := range s.Steps {
		switch {
		case st.Profile:
			p.line("%s  After the last tier: the namespace's profile (kns.%s) allows it.", indent, s.Endpoint.Namespace)
			continue
		case st.EndOfTier:
			p.line("%s    End of tier %s: no policy of the tier decided; its default action is %s.", indent, st.Tier, st.Action)
			continue
		}
		if st.Tier != tier {
			tier = st.Tier
			p.line("%s  %s", indent, tierLine(s, tier, dir))
			n = 0
		}
		n++
		p.line("%s    %d. %s (%s): %s", indent, n, st.Policy, p.owners.describe(st.Policy), stepOutcome(st, dir))
		if len(st.Logged) > 0 {
			p.line("%s       Log rules matched on the way: %v", indent, st.Logged)
		}
		for _, u := range st.Uncertain {
			p.line("%s       %s", indent, u)
		}
	}
	if s.NotReached > 0 {
		p.line("%s    (%d more selecting %s not reached.)", indent, s.NotReached, plural(s.NotReached, "policy", "policies"))
	}
	p.line("%s  Decided: %s.", indent, s.Reason)
	if d := deciding(s); d != nil {
		if owner, ok := p.owners.of(d); ok {
			p.line("%s  Deciding policy %s: %s.", indent, d, owner.Name)
		}
	}
}

func tierLine(s *evaluator.Side, name, dir string) string {
	for _, t := range s.Tiers {
		if t.Tier != name {
			continue
		}
		order := "no order"
		if t.Order != nil {
			order = "order " + evaluator.FormatOrder(*t.Order)
		}
		return fmt.Sprintf("Tier %s (%s): %d %s it for %s, in evaluation order:", name, order, len(t.Policies), plural(len(t.Policies), "policy selects", "policies select"), dir)
	}
	return "Tier " + name + ":"
}

func stepOutcome(st evaluator.Step, dir string) string {
	switch {
	case st.Rule >= 0:
		return fmt.Sprintf("%s rule %d matched: %s", dir, st.Rule, st.Action)
	default:
		return "no rule matched"
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
