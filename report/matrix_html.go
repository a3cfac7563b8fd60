package report

import (
	"html/template"
	"io"
	"strings"

	"github.com/calico-pni/calico-pni/evaluator"
)

// MatrixHTML prints one self-contained page (no script, no network): the
// matrix as a coloured grid, a legend, and on each cell the policy that
// decided it (all of them in the cell's tooltip).
func MatrixHTML(w io.Writer, r MatrixReport) error {
	type cell struct {
		Class, Text, Decider, Title string
	}
	type row struct {
		Group string
		Cells []cell
	}
	page := struct {
		Scope, Policies, Classes, Compare string
		Columns                           []string
		Rows                              []row
		Empty                             string
	}{Scope: r.scope(), Policies: r.Policies, Classes: classesText(r.Matrix), Empty: strings.Join(r.Matrix.Empty, ", ")}
	if r.Compare != nil {
		page.Compare = "Each cell reads: today -> with calico-pni's policies. Cells with a thick red border lose connectivity, a thick green border gain it."
	}
	m := r.Matrix
	preview := newPreview(r.Compare)
	for _, g := range m.Groups {
		page.Columns = append(page.Columns, r.label(g))
	}
	for i, a := range m.Groups {
		rw := row{Group: r.label(a)}
		for j, b := range m.Groups {
			c := m.Cells[i][j]
			out := cell{Class: cssClass(c.Verdict), Text: cellText(c), Title: r.label(a) + " -> " + r.label(b) + ": " + cellDetail(m.Protocol, c)}
			out.Decider = mainDecider(c)
			if f, ok := preview.cell(a, b); ok {
				out.Class = cssClass(f.Verdict)
				if ft := cellText(f); ft != out.Text {
					out.Text += " -> " + ft
				}
				out.Decider = mainDecider(f)
				out.Title += "\nwith calico-pni's policies: " + cellDetail(m.Protocol, f)
				switch {
				case loses(c, f):
					out.Class += " lose"
				case gains(c, f):
					out.Class += " gain"
				}
			}
			rw.Cells = append(rw.Cells, out)
		}
		page.Rows = append(page.Rows, rw)
	}
	return matrixPage.Execute(w, page)
}

func cssClass(v evaluator.Verdict) string {
	switch v {
	case evaluator.Allow:
		return "allow"
	case evaluator.Deny:
		return "deny"
	case evaluator.Partial:
		return "partial"
	case evaluator.Indeterminate:
		return "undecided"
	}
	return "none"
}

var matrixPage = template.Must(template.New("matrix").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>calico-pni matrix: who can reach whom</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.5em; font-size: 0.85em; vertical-align: top; }
th { background: #f3f3f3; }
td small { display: block; color: #333; font-size: 0.8em; max-width: 14em; overflow-wrap: anywhere; }
.allow { background: #b9e4b5; }
.deny { background: #f2b8b5; }
.partial { background: #f7dc9c; }
.undecided { background: #cfcfcf; }
.none { background: #fff; color: #999; }
.lose { outline: 3px solid #b3261e; outline-offset: -3px; }
.gain { outline: 3px solid #1e7b34; outline-offset: -3px; }
.legend span { display: inline-block; padding: 0.2em 0.6em; margin-right: 0.5em; border: 1px solid #bbb; }
</style>
</head>
<body>
<h1>Who can reach whom</h1>
<p>{{.Scope}}. Rows are sources, columns destinations.</p>
<p>Policies: {{.Policies}}.</p>
<p>{{.Classes}}</p>
{{if .Compare}}<p>{{.Compare}}</p>{{end}}
<p class="legend"><span class="allow">allow: every pod pair</span><span class="partial">partial: some pairs or ports</span><span class="deny">deny: no pair</span><span class="undecided">?: cannot be decided</span><span class="none">-: no pod pair</span></p>
<p>Each cell names the policy that decided it; hover over a cell for every deciding policy and the allowed ports.</p>
<table>
<tr><th>from \ to</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{.Group}}</th>{{range .Cells}}<td class="{{.Class}}" title="{{.Title}}">{{.Text}}{{if .Decider}}<small>{{.Decider}}</small>{{end}}</td>{{end}}</tr>
{{end}}</table>
{{if .Empty}}<p>Namespaces without a running pod, left out: {{.Empty}}.</p>{{end}}
</body>
</html>
`))
