package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/calico-pni/calico-pni/evaluator"
)

// MatrixText prints a matrix for people: the grid, a legend, then the
// cells that are partial or undecided, in words.
func MatrixText(w io.Writer, r MatrixReport) error {
	p := &printer{w: w}
	m := r.Matrix
	p.line("Who can reach whom: %s. Rows are sources, columns destinations.", r.scope())
	p.line("Policies: %s.", r.Policies)
	p.line("%s", classesText(m))
	if r.Compare != nil {
		before, after, _ := r.states()
		p.line("Cells read %s -> %s.", before, after)
	}
	p.line("")
	if p.err != nil {
		return p.err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"from \\ to"}
	for _, g := range m.Groups {
		header = append(header, r.label(g))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	preview := newPreview(r.Compare)
	for i, a := range m.Groups {
		row := []string{r.label(a)}
		for j, b := range m.Groups {
			text := cellText(m.Cells[i][j])
			if f, ok := preview.cell(a, b); ok {
				if ft := cellText(f); ft != text {
					text += "->" + ft
				}
			}
			row = append(row, text)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p.line("")
	p.line("allow: every pod pair, on every port asked; deny: none; partial: some pairs or ports (below); ?: cannot be decided (below); -: no pod pair.")
	if r.Compare != nil {
		compareText(p, r)
	} else {
		details(p, r, m)
	}
	if len(m.Empty) > 0 {
		p.line("")
		p.line("Namespaces without a running pod, left out: %s.", strings.Join(m.Empty, ", "))
	}
	if len(m.Skipped) > 0 {
		p.line("Pods left out: %s.", strings.Join(m.Skipped, "; "))
	}
	for _, n := range r.Notes {
		p.line("Note: %s", n)
	}
	return p.err
}

func details(p *printer, r MatrixReport, m *evaluator.Matrix) {
	first := true
	for i, a := range m.Groups {
		for j, b := range m.Groups {
			c := m.Cells[i][j]
			if c.Verdict != evaluator.Partial && c.Verdict != evaluator.Indeterminate {
				continue
			}
			if first {
				p.line("")
				p.line("Partial and undecided cells:")
				first = false
			}
			p.line("  %s -> %s: %s", r.label(a), r.label(b), r.Owners.cellDetail(m.Protocol, c))
		}
	}
}

func compareText(p *printer, r MatrixReport) {
	cs := changes(r.Matrix, r.Compare)
	_, _, when := r.states()
	for _, want := range []struct {
		title string
		pick  func(change) bool
	}{
		{"Will lose connectivity " + when, func(c change) bool { return c.lose }},
		{"Will gain connectivity", func(c change) bool { return c.gain && !c.lose }},
	} {
		first := true
		for _, c := range cs {
			if !want.pick(c) {
				continue
			}
			if first {
				p.line("")
				p.line("%s:", want.title)
				first = false
			}
			p.line("  %s -> %s: %s -> %s; %s", r.label(r.Matrix.Groups[c.from]), r.label(r.Matrix.Groups[c.to]), c.todayV, c.futurV, r.Owners.cellDetail(r.Matrix.Protocol, c.future))
		}
		if first {
			p.line("")
			p.line("%s: none.", want.title)
		}
	}
}
