package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/calico-pni/calico-pni/evaluator"
)

// MatrixCSV prints one row per cell (and, with a comparison, today's and
// calico-pni's verdicts side by side).
func MatrixCSV(w io.Writer, r MatrixReport) error {
	cw := csv.NewWriter(w)
	header := []string{"from", "to", "verdict", "allowed_ports", "pod_pairs", "allowed_pairs", "denied_pairs", "undecided_pairs", "allowed_by", "denied_by", "reason"}
	if r.Compare != nil {
		header = append(header, "preview_verdict", "preview_allowed_ports", "preview_allowed_pairs", "preview_allowed_by", "preview_denied_by", "change")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	m := r.Matrix
	preview := newPreview(r.Compare)
	for i, a := range m.Groups {
		for j, b := range m.Groups {
			c := m.Cells[i][j]
			row := append([]string{a, b}, cellCSV(c)...)
			if preview != nil {
				row = append(row, previewCSV(c, preview, a, b)...)
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func cellCSV(c evaluator.Cell) []string {
	return []string{string(c.Verdict), evaluator.RangesText(c.Ports), fmt.Sprint(c.Pairs), fmt.Sprint(c.Allowed), fmt.Sprint(c.Denied), fmt.Sprint(c.Undecided), strings.Join(c.AllowedBy, "; "), strings.Join(c.DeniedBy, "; "), c.Reason}
}

// previewCSV is the comparison's columns for the cell from a to b (today
// is today's cell); empty when the comparison has no such pair.
func previewCSV(today evaluator.Cell, p *preview, a, b string) []string {
	f, ok := p.cell(a, b)
	if !ok {
		return make([]string, 6)
	}
	change := ""
	switch {
	case loses(today, f):
		change = "lose"
	case gains(today, f):
		change = "gain"
	}
	return []string{string(f.Verdict), evaluator.RangesText(f.Ports), fmt.Sprint(f.Allowed), strings.Join(f.AllowedBy, "; "), strings.Join(f.DeniedBy, "; "), change}
}
