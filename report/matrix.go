package report

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/calico-pni/calico-pni/evaluator"
)

// MatrixReport is everything matrix prints.
type MatrixReport struct {
	// By is "project" or "namespace".
	By       string
	Policies string
	Matrix   *evaluator.Matrix
	// Compare, when set, is the matrix under calico-pni's policies, to
	// show beside Matrix (today's).
	Compare *evaluator.Matrix
	// Labels gives a group a longer name ("p-7xq2n (System project)").
	Labels map[string]string
	// Projects gives each group's project ID ("" for a namespace in no
	// project) and System the System project's ID, for the HTML page's
	// comparison with plain isolation (isolation.go). Without Projects the
	// page finds no exception.
	Projects map[string]string
	System   string
	Notes    []string
	// Before and After name the two states of a comparison, Change says
	// when After comes about, and ComparePolicies which policies After
	// evaluates; empty, they are today and calico-pni's policies in place
	// (see states).
	Before, After, Change, ComparePolicies string
	// Owners names the policies of others than calico-pni and the users,
	// such as Rancher's own isolation.
	Owners Owners
}

// states names the two states of a comparison and when the second comes.
func (r MatrixReport) states() (before, after, change string) {
	return cmp.Or(r.Before, "today"), cmp.Or(r.After, "with calico-pni's policies (--preview)"), cmp.Or(r.Change, "when calico-pni's policies are in place")
}

func (r MatrixReport) label(g string) string {
	if l, ok := r.Labels[g]; ok {
		return l
	}
	return g
}

// scope says what the matrix covers, in words.
func (r MatrixReport) scope() string {
	m := r.Matrix
	port := "every port"
	if m.Port != 0 {
		port = fmt.Sprintf("port %d", m.Port)
	}
	return fmt.Sprintf("%s, %s; by %s", m.Protocol, port, r.By)
}

// classesText says how many evaluations stood for how many pods.
func classesText(m *evaluator.Matrix) string {
	return fmt.Sprintf("%d running pods in %d namespaces, evaluated as %d classes: pods with the same relevant labels (the label keys and values the policies' selectors read) in namespaces with the same relevant labels behave alike, so one pair of pods is evaluated for each pair of classes.",
		m.Pods, m.Namespaces-len(m.Empty), m.Classes)
}

// cellText is the short form of a cell.
func cellText(c evaluator.Cell) string {
	switch c.Verdict {
	case "":
		return "-"
	case evaluator.Indeterminate:
		return "?"
	}
	return string(c.Verdict)
}

// cellDetail says what a cell holds in one line, its deciders named
// with their owners.
func (o Owners) cellDetail(protocol string, c evaluator.Cell) string {
	var parts []string
	switch c.Verdict {
	case "":
		return "no pod pair"
	case evaluator.Partial:
		what := fmt.Sprintf("%d of %d pod pairs allowed", c.Allowed, c.Pairs)
		switch {
		case c.Partial == c.Pairs:
			what = fmt.Sprintf("all %d pod pairs allowed only on %s %s", c.Pairs, protocol, evaluator.RangesText(c.Ports))
		case c.Partial > 0:
			what += fmt.Sprintf(" (%d of them only on %s %s)", c.Partial, protocol, evaluator.RangesText(c.Ports))
		}
		parts = append(parts, what)
	case evaluator.Indeterminate:
		parts = append(parts, fmt.Sprintf("%d of %d pod pairs cannot be decided: %s", c.Undecided, c.Pairs, c.Reason))
	default:
		parts = append(parts, fmt.Sprintf("%s (%d pod pairs)", c.Verdict, c.Pairs))
	}
	if len(c.AllowedBy) > 0 {
		parts = append(parts, "allowed by "+strings.Join(o.deciders(c.AllowedBy), ", "))
	}
	if len(c.DeniedBy) > 0 {
		parts = append(parts, "denied by "+strings.Join(o.deciders(c.DeniedBy), ", "))
	}
	return strings.Join(parts, "; ")
}

// change compares a cell today and under calico-pni's policies.
type change struct {
	from, to       int
	today, future  evaluator.Cell
	lose, gain     bool
	todayV, futurV string
}

func changes(today, future *evaluator.Matrix) []change {
	preview := newPreview(future)
	var out []change
	for i, a := range today.Groups {
		for j, b := range today.Groups {
			f, ok := preview.cell(a, b)
			if !ok {
				continue
			}
			t := today.Cells[i][j]
			if t.Verdict == f.Verdict && t.Allowed == f.Allowed && evaluator.RangesText(t.Ports) == evaluator.RangesText(f.Ports) {
				continue
			}
			out = append(out, change{from: i, to: j, today: t, future: f, todayV: cellText(t), futurV: cellText(f),
				lose: loses(t, f), gain: gains(t, f)})
		}
	}
	return out
}

// preview finds the cells of the matrix under calico-pni's policies by
// group name, for printing beside today's.
type preview struct {
	m     *evaluator.Matrix
	index map[string]int
}

// newPreview indexes m; it returns nil for a nil m (no comparison).
func newPreview(m *evaluator.Matrix) *preview {
	if m == nil {
		return nil
	}
	p := &preview{m: m, index: make(map[string]int, len(m.Groups))}
	for i, g := range m.Groups {
		p.index[g] = i
	}
	return p
}

// cell is the cell from group a to group b, and false when either group
// is not in the matrix or there is no comparison (p is nil).
func (p *preview) cell(a, b string) (evaluator.Cell, bool) {
	if p == nil {
		return evaluator.Cell{}, false
	}
	i, ok1 := p.index[a]
	j, ok2 := p.index[b]
	if !ok1 || !ok2 {
		return evaluator.Cell{}, false
	}
	return p.m.Cells[i][j], true
}

// loses says whether a cell loses connectivity from today to future:
// fewer pod pairs allowed, or no longer allowed outright.
func loses(today, future evaluator.Cell) bool {
	return future.Allowed < today.Allowed || (today.Verdict == evaluator.Allow && future.Verdict != evaluator.Allow)
}

// gains is the converse of loses.
func gains(today, future evaluator.Cell) bool {
	return future.Allowed > today.Allowed || (future.Verdict == evaluator.Allow && today.Verdict != evaluator.Allow)
}

// mainDecider names what decided most of a cell, for a grid.
func mainDecider(c evaluator.Cell) string {
	switch {
	case c.Verdict == evaluator.Deny && len(c.DeniedBy) > 0:
		return c.DeniedBy[0]
	case len(c.AllowedBy) > 0:
		return c.AllowedBy[0]
	case len(c.DeniedBy) > 0:
		return c.DeniedBy[0]
	}
	return ""
}
