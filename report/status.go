package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/calico-pni/calico-pni/policies"
)

// The outputs of `calico-pni status`: the table of every namespace's
// status, and with --pending and --ready the flow evidence the daemon
// wrote in the staged namespaces' status.

// StateUnknown is shown for a namespace without a readable status: the
// daemon has not passed over it, or does not run.
const StateUnknown policies.State = "unknown"

var ShownStates = []policies.State{policies.Isolated, policies.Staged, policies.Exempt, policies.Open, policies.Error, StateUnknown}

// StatusRow is one namespace as `calico-pni status` shows it; in JSON, the
// namespace's name followed by its status as the daemon wrote it.
type StatusRow struct {
	Namespace string `json:"namespace"`
	policies.Status
}

// StatusTable writes the table: namespace, state, project, number of
// policies, and the first problem or else the reason, with a word when
// Rancher's own isolation also applies or the namespace is moving. Wide
// adds whether the baseline applies, every problem, the policies' names,
// Rancher's policies there and the move in progress.
func StatusTable(w io.Writer, rows []StatusRow, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "NAMESPACE\tSTATE\tISOLATED\tPROJECT\tPOLICIES\tREASON\tPROBLEMS\tPOLICY NAMES\tRANCHER\tTRANSITION")
	} else {
		fmt.Fprintln(tw, "NAMESPACE\tSTATE\tPROJECT\tPOLICIES\tREASON / PROBLEM")
	}
	for _, r := range rows {
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.State, r.Isolated, orNone(r.Project), len(r.Policies),
				orNone(r.Reason), orNone(strings.Join(r.Problems, "; ")), orNone(strings.Join(r.Policies, ",")),
				orNone(strings.Join(r.Rancher, ",")), orNone(r.Transition))
			continue
		}
		why := truncate(orNone(r.Reason), 100)
		if len(r.Problems) > 0 {
			why = truncate(r.Problems[0], 100)
			if more := len(r.Problems) - 1; more > 0 {
				why += fmt.Sprintf(" (+%d more: -o wide)", more)
			}
		}
		if len(r.Rancher) > 0 {
			why += fmt.Sprintf(" [Rancher's isolation also applies: %d of its policies]", len(r.Rancher))
		}
		if r.Transition != "" {
			why += " [moving: " + r.Transition + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Namespace, r.State, orNone(r.Project), len(r.Policies), why)
	}
	return tw.Flush()
}

func StatusJSON(w io.Writer, rows []StatusRow) error { return writeJSON(w, rows) }

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// `calico-pni status --pending` and `--ready` read what the daemon, the
// one replica connected to Goldmane, wrote in the status of every staged
// namespace (policies.Pending): the pending denies of the flow window and
// the promotion gate's answer for the namespace's project.

// PendingRow is one peer of a staged namespace's pending denies.
type PendingRow struct {
	Namespace string `json:"namespace"`
	Project   string `json:"project"`
	// Flows is the namespace's count of pending denies in Window.
	Flows     string `json:"flows"`
	Window    string `json:"window,omitempty"`
	Direction string `json:"direction,omitempty"`
	Peer      string `json:"peer,omitempty"`
	Ports     string `json:"ports,omitempty"`
	// Unavailable says why there is no flow evidence for the namespace.
	Unavailable string `json:"unavailable,omitempty"`
}

// PendingRows lists every peer of every staged namespace, a namespace
// without pending denies as one row, and a namespace whose status names
// more peers than it shows as a row counting them.
func PendingRows(rows []StatusRow) []PendingRow {
	var out []PendingRow
	for _, r := range rows {
		if r.State != policies.Staged {
			continue
		}
		base := PendingRow{Namespace: r.Namespace, Project: r.Project}
		p := r.Pending
		switch {
		case p == nil:
			base.Unavailable = "the daemon has written no pending denies yet"
			out = append(out, base)
			continue
		case p.Unavailable != "":
			base.Unavailable = p.Unavailable
			out = append(out, base)
			continue
		}
		base.Flows, base.Window = p.Flows, p.Window
		if len(p.Peers) == 0 {
			out = append(out, base)
		}
		for _, peer := range p.Peers {
			row := base
			row.Direction, row.Peer, row.Ports = peer.Direction, peer.Peer, strings.Join(peer.Ports, ", ")
			out = append(out, row)
		}
		if p.MorePeers > 0 {
			row := base
			row.Peer = fmt.Sprintf("(%d more peers)", p.MorePeers)
			out = append(out, row)
		}
	}
	return out
}

func PendingTable(w io.Writer, rows []PendingRow, asJSON bool) error {
	if asJSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPROJECT\tPENDING DENIES\tDIRECTION\tPEER\tPORTS")
	for _, r := range rows {
		flows := r.Flows
		switch {
		case r.Unavailable != "":
			flows = r.Unavailable
		case r.Window != "":
			flows += " in " + r.Window
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, orNone(r.Project), flows, orNone(r.Direction), orNone(r.Peer), orNone(r.Ports))
	}
	return tw.Flush()
}

// ReadyRow is a staged project and the promotion gate's answer for it.
type ReadyRow struct {
	Project    string   `json:"project"`
	Namespaces []string `json:"namespaces"`
	// Ready: the project has been quiet for projects.promote.quietFor now.
	Ready bool `json:"ready"`
	// ReadyAt is when it passes if it stays quiet; LastDeny its latest
	// unexpected pending deny.
	ReadyAt  string `json:"readyAt,omitempty"`
	LastDeny string `json:"lastDeny,omitempty"`
	// Unknown says why the gate's answer is not known.
	Unknown string `json:"unknown,omitempty"`
}

// ReadyRows groups the staged namespaces by project. A project is ready
// when every one of its namespaces says it passes at or before now; the
// answer is unknown while a namespace has no flow evidence.
func ReadyRows(rows []StatusRow, now time.Time) []ReadyRow {
	byProject := map[string]*ReadyRow{}
	var order []string
	for _, r := range rows {
		if r.State != policies.Staged || r.Project == "" {
			continue
		}
		row := byProject[r.Project]
		if row == nil {
			row = &ReadyRow{Project: r.Project, Ready: true}
			byProject[r.Project] = row
			order = append(order, r.Project)
		}
		row.Namespaces = append(row.Namespaces, r.Namespace)
		p := r.Pending
		switch {
		case p == nil:
			row.Unknown = cmp.Or(row.Unknown, "namespace "+r.Namespace+" has no pending denies from the daemon yet")
		case p.Unavailable != "":
			row.Unknown = cmp.Or(row.Unknown, p.Unavailable)
		case p.ReadyAt == "":
			row.Unknown = cmp.Or(row.Unknown, "namespace "+r.Namespace+" has no answer of the promotion gate")
		default:
			at, err := time.Parse(time.RFC3339, p.ReadyAt)
			if err != nil {
				row.Unknown = cmp.Or(row.Unknown, fmt.Sprintf("namespace %s: readyAt %q is no time", r.Namespace, p.ReadyAt))
				break
			}
			if row.ReadyAt == "" || p.ReadyAt > row.ReadyAt {
				row.ReadyAt = p.ReadyAt
			}
			row.LastDeny = cmp.Or(row.LastDeny, p.LastDeny)
			if at.After(now) {
				row.Ready = false
			}
		}
	}
	slices.Sort(order)
	out := make([]ReadyRow, 0, len(order))
	for _, project := range order {
		row := byProject[project]
		if row.Unknown != "" {
			row.Ready = false
		}
		out = append(out, *row)
	}
	return out
}

func ReadyTable(w io.Writer, rows []ReadyRow, asJSON bool) error {
	if asJSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tNAMESPACES\tREADY\tREADY AT\tLAST UNEXPECTED DENY")
	for _, r := range rows {
		ready := "no"
		switch {
		case r.Unknown != "":
			ready = "unknown: " + r.Unknown
		case r.Ready:
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Project, strings.Join(r.Namespaces, ","), ready, orNone(r.ReadyAt), orNone(r.LastDeny))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
