package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/report"
)

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
	rows = slices.DeleteFunc(rows, func(r report.StatusRow) bool {
		return (wantProject != "" && r.Project != wantProject) || (len(states) > 0 && !slices.Contains(states, r.State))
	})
	switch {
	case *pending:
		return flowViewExit(stderr, report.PendingTable(stdout, report.PendingRows(rows), *output == "json"))
	case *ready:
		return flowViewExit(stderr, report.ReadyTable(stdout, report.ReadyRows(rows, time.Now()), *output == "json"))
	}
	switch *output {
	case "json":
		err = report.StatusJSON(stdout, rows)
	default:
		if len(rows) == 0 {
			fmt.Fprintln(stderr, "No namespaces match.")
		}
		err = report.StatusTable(stdout, rows, *output == "wide")
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
		if !slices.Contains(report.ShownStates, st) {
			return nil, fmt.Errorf("--state %q: use isolated, staged, exempt, open, error or unknown, comma-separated", part)
		}
		out = append(out, st)
	}
	return out, nil
}

// statusRows turns what the cluster holds into rows, a namespace without
// a readable status into an unknown one, and counts the namespaces that
// have a status.
func statusRows(statuses []cluster.NamespaceStatus) ([]report.StatusRow, int) {
	rows := make([]report.StatusRow, 0, len(statuses))
	known := 0
	for _, s := range statuses {
		row := report.StatusRow{Namespace: s.Name, Status: s.Status}
		switch {
		case s.Missing:
			row.Status = policies.Status{State: report.StateUnknown, Reason: "no calico-pni status yet"}
		case s.Err != nil:
			row.Status = policies.Status{State: report.StateUnknown, Problems: []string{s.Err.Error()}}
		default:
			known++
		}
		rows = append(rows, row)
	}
	return rows, known
}
