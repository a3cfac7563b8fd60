package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/policies"
)

// stateUnknown is shown for a namespace without a readable status: the
// daemon has not passed over it, or does not run.
const stateUnknown policies.State = "unknown"

var shownStates = []policies.State{policies.Isolated, policies.Staged, policies.Exempt, policies.Open, policies.Error, stateUnknown}

// statusRow is one namespace as `calico-pni status` shows it; in JSON, the
// namespace's name followed by its status as the daemon wrote it.
type statusRow struct {
	Namespace string `json:"namespace"`
	policies.Status
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster configuration, else $KUBECONFIG)")
	output := fs.String("o", "", "output format: wide (every problem, the policies' names) or json")
	project := fs.String("project", "", "show only the namespaces of this Rancher project (p-xxxxx, or cluster:project as in field.cattle.io/projectId)")
	state := fs.String("state", "", "show only namespaces in these states, comma-separated: isolated, staged, exempt, open, error, unknown")
	pending := fs.Bool("pending", false, "show the pending denies of every staged namespace, by peer and port: real connections, from Calico's flow logs, that enforcing isolation would deny (flows.enabled)")
	ready := fs.Bool("ready", false, "show every staged project with the promotion gate's answer: whether it has shown no unexpected pending deny for projects.promote.quietFor, and when it will")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" status [flags]\n\nShows every namespace with the status calico-pni wrote on it (calico-pni.io/status):\nits state, project, number of policies, and why, or its first problem. A namespace\nwithout a status is shown as unknown.\n\nWith --pending, the pending denies of the staged namespaces; with --ready, the staged\nprojects and whether they pass the promotion gate (projects.promote). Both read what the\ndaemon, connected to Calico's flow logs, wrote in the staged namespaces' status.\n\nExit codes: 0 no namespace shown is in error, 1 a namespace shown is in error or the\ncluster could not be read, 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if *pending && *ready {
		fmt.Fprintln(stderr, prog+" status: give --pending or --ready, not both")
		return exitUsage
	}
	if *output != "" && *output != "wide" && *output != "json" {
		fmt.Fprintf(stderr, prog+" status: -o %q: use wide or json, or leave it out for the table\n", *output)
		return exitUsage
	}
	states, err := parseStates(*state)
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitUsage
	}
	wantProject := *project
	if _, id, ok := strings.Cut(wantProject, ":"); ok {
		wantProject = id
	}

	rest, err := restConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitInvalid
	}
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitInvalid
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	statuses, err := cluster.NamespaceStatuses(ctx, kube)
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitInvalid
	}

	rows, known := statusRows(statuses)
	if known == 0 && len(rows) > 0 {
		fmt.Fprintln(stderr, prog+" status: no namespace has a calico-pni status: is calico-pni running? (kubectl -n calico-pni-system get pods)")
	}
	rows = slices.DeleteFunc(rows, func(r statusRow) bool {
		return (wantProject != "" && r.Project != wantProject) || (len(states) > 0 && !slices.Contains(states, r.State))
	})
	switch {
	case *pending:
		return flowViewExit(stderr, writePending(stdout, pendingRows(rows), *output == "json"))
	case *ready:
		return flowViewExit(stderr, writeReady(stdout, readyRows(rows, time.Now()), *output == "json"))
	}
	switch *output {
	case "json":
		err = writeStatusJSON(stdout, rows)
	default:
		if len(rows) == 0 {
			fmt.Fprintln(stderr, "No namespaces match.")
		}
		err = writeStatusTable(stdout, rows, *output == "wide")
	}
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitInvalid
	}
	var inError []string
	for _, r := range rows {
		if r.State == policies.Error {
			inError = append(inError, r.Namespace)
		}
	}
	if len(inError) > 0 {
		fmt.Fprintf(stderr, prog+" status: %d namespaces in error: %s\n", len(inError), strings.Join(inError, ", "))
		return exitInvalid
	}
	return exitOK
}

// flowViewExit ends --pending and --ready: they report, and fail only
// when the output could not be written.
func flowViewExit(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintln(stderr, prog+" status:", err)
		return exitInvalid
	}
	return exitOK
}

func parseStates(s string) ([]policies.State, error) {
	if s == "" {
		return nil, nil
	}
	var out []policies.State
	for _, part := range strings.Split(s, ",") {
		st := policies.State(strings.TrimSpace(part))
		if !slices.Contains(shownStates, st) {
			return nil, fmt.Errorf("--state %q: use isolated, staged, exempt, open, error or unknown, comma-separated", part)
		}
		out = append(out, st)
	}
	return out, nil
}

// statusRows turns what the cluster holds into rows, a namespace without
// a readable status into an unknown one, and counts the namespaces that
// have a status.
func statusRows(statuses []cluster.NamespaceStatus) ([]statusRow, int) {
	rows := make([]statusRow, 0, len(statuses))
	known := 0
	for _, s := range statuses {
		row := statusRow{Namespace: s.Name, Status: s.Status}
		switch {
		case s.Missing:
			row.Status = policies.Status{State: stateUnknown, Reason: "no calico-pni status yet"}
		case s.Err != nil:
			row.Status = policies.Status{State: stateUnknown, Problems: []string{s.Err.Error()}}
		default:
			known++
		}
		rows = append(rows, row)
	}
	return rows, known
}

// writeStatusTable writes the table: namespace, state, project, number of
// policies, and the first problem or else the reason, with a word when
// Rancher's own isolation also applies or the namespace is moving. Wide
// adds whether the baseline applies, every problem, the policies' names,
// Rancher's policies there and the move in progress.
func writeStatusTable(w io.Writer, rows []statusRow, wide bool) error {
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

func writeStatusJSON(w io.Writer, rows []statusRow) error { return writeJSON(w, rows) }

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
