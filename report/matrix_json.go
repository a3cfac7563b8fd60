package report

import (
	"cmp"
	"encoding/json"
	"io"

	"github.com/calico-pni/calico-pni/evaluator"
)

type jsonCell struct {
	From      string   `json:"from"`
	To        string   `json:"to"`
	Verdict   string   `json:"verdict"`
	Ports     string   `json:"allowedPorts,omitempty"`
	Pairs     int      `json:"podPairs"`
	Allowed   int      `json:"allowedPairs"`
	Denied    int      `json:"deniedPairs"`
	Undecided int      `json:"undecidedPairs"`
	AllowedBy []string `json:"allowedBy,omitempty"`
	DeniedBy  []string `json:"deniedBy,omitempty"`
	Reason    string   `json:"reason,omitempty"`
}

type jsonMatrix struct {
	Protocol   string     `json:"protocol"`
	Port       uint16     `json:"port,omitempty"`
	By         string     `json:"by"`
	Policies   string     `json:"policies"`
	Groups     []string   `json:"groups"`
	Pods       int        `json:"pods"`
	Namespaces int        `json:"namespaces"`
	Classes    int        `json:"classes"`
	Cells      []jsonCell `json:"cells"`
	Empty      []string   `json:"namespacesWithoutPods,omitempty"`
	Skipped    []string   `json:"podsLeftOut,omitempty"`
	// Owners names the owners of the cells' deciders, by policy
	// (MatrixReport.Owners).
	Owners map[string]Owner `json:"owners,omitempty"`
}

type jsonChange struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Change  string   `json:"change"`
	Today   jsonCell `json:"today"`
	Preview jsonCell `json:"preview"`
}

// MatrixJSON prints the matrix, and with a comparison both matrices and
// the cells that change.
func MatrixJSON(w io.Writer, r MatrixReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	today := matrixJSON(r, r.Matrix)
	if r.Compare == nil {
		return enc.Encode(today)
	}
	preview := matrixJSON(r, r.Compare)
	preview.Policies = cmp.Or(r.ComparePolicies, "calico-pni's as `calico-pni render` computes them, and the users' as they are")
	before, after, _ := r.states()
	// today holds the state before, preview the state after.
	out := struct {
		Before  string       `json:"before"`
		After   string       `json:"after"`
		Today   jsonMatrix   `json:"today"`
		Preview jsonMatrix   `json:"preview"`
		Changes []jsonChange `json:"changes"`
	}{Before: before, After: after, Today: today, Preview: preview, Changes: []jsonChange{}}
	for _, c := range changes(r.Matrix, r.Compare) {
		kind := "change"
		if c.lose {
			kind = "lose"
		} else if c.gain {
			kind = "gain"
		}
		a, b := r.Matrix.Groups[c.from], r.Matrix.Groups[c.to]
		out.Changes = append(out.Changes, jsonChange{From: a, To: b, Change: kind, Today: cellJSON(a, b, c.today), Preview: cellJSON(a, b, c.future)})
	}
	return enc.Encode(out)
}

func matrixJSON(r MatrixReport, m *evaluator.Matrix) jsonMatrix {
	out := jsonMatrix{Protocol: m.Protocol, Port: m.Port, By: r.By, Policies: r.Policies, Groups: m.Groups,
		Pods: m.Pods, Namespaces: m.Namespaces, Classes: m.Classes, Empty: m.Empty, Skipped: m.Skipped, Cells: []jsonCell{}}
	owners := map[string]Owner{}
	for i, a := range m.Groups {
		for j, b := range m.Groups {
			c := m.Cells[i][j]
			out.Cells = append(out.Cells, cellJSON(a, b, c))
			r.Owners.ofDeciders(c, owners)
		}
	}
	if len(owners) > 0 {
		out.Owners = owners
	}
	return out
}

func cellJSON(a, b string, c evaluator.Cell) jsonCell {
	v := string(c.Verdict)
	if v == "" {
		v = "none"
	}
	return jsonCell{From: a, To: b, Verdict: v, Ports: evaluator.RangesText(c.Ports), Pairs: c.Pairs, Allowed: c.Allowed, Denied: c.Denied, Undecided: c.Undecided, AllowedBy: c.AllowedBy, DeniedBy: c.DeniedBy, Reason: c.Reason}
}
