package main

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

// `calico-pni status --pending` and `--ready` read what the daemon, the
// one replica connected to Goldmane, wrote in the status of every staged
// namespace (policies.Pending): the pending denies of the flow window and
// the promotion gate's answer for the namespace's project.

// pendingRow is one peer of a staged namespace's pending denies.
type pendingRow struct {
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

// pendingRows lists every peer of every staged namespace, a namespace
// without pending denies as one row, and a namespace whose status names
// more peers than it shows as a row counting them.
func pendingRows(rows []statusRow) []pendingRow {
	var out []pendingRow
	for _, r := range rows {
		if r.State != policies.Staged {
			continue
		}
		base := pendingRow{Namespace: r.Namespace, Project: r.Project}
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

func writePending(w io.Writer, rows []pendingRow, asJSON bool) error {
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

// readyRow is a staged project and the promotion gate's answer for it.
type readyRow struct {
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

// readyRows groups the staged namespaces by project. A project is ready
// when every one of its namespaces says it passes at or before now; the
// answer is unknown while a namespace has no flow evidence.
func readyRows(rows []statusRow, now time.Time) []readyRow {
	byProject := map[string]*readyRow{}
	var order []string
	for _, r := range rows {
		if r.State != policies.Staged || r.Project == "" {
			continue
		}
		row := byProject[r.Project]
		if row == nil {
			row = &readyRow{Project: r.Project, Ready: true}
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
	out := make([]readyRow, 0, len(order))
	for _, project := range order {
		row := byProject[project]
		if row.Unknown != "" {
			row.Ready = false
		}
		out = append(out, *row)
	}
	return out
}

func writeReady(w io.Writer, rows []readyRow, asJSON bool) error {
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
