package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/report"
)

// noProject names the group of namespaces that are in no project.
const noProject = "(no project)"

func runMatrix(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	oneShotGC()
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	by := fs.String("by", "project", "rows and columns: project (Rancher projects) or namespace")
	port := fs.Int("port", 0, "destination port (default: every port)")
	protocol := fs.String("protocol", "TCP", "TCP, UDP or SCTP")
	compare := fs.Bool("compare", false, "show today's verdicts next to those under calico-pni's policies (--preview), and the pairs that will lose or gain connectivity")
	before := fs.String("before", "today", "with --compare: the state compared from: today, or preview (calico-pni's policies beside Rancher's isolation, to see what switching that off changes with --without-rancher)")
	output := fs.String("o", "text", "output: text, csv, json or html")
	var in evalInput
	in.register(fs)
	var observed observedFlags
	observed.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" matrix [--by project|namespace] [--port N] [--protocol P] (-f FILE | --kubeconfig PATH) [--preview | --compare [--before today|preview]] [--without-rancher] [-o text|csv|json|html]\n\nSays who can reach whom, with the policy that decides each cell. Pods with the same\nrelevant labels in namespaces with the same relevant labels behave alike, so one\npair of each is evaluated.\n\nTaking over from Rancher's own project isolation, compare three states:\n  --compare                                     today -> calico-pni beside Rancher's isolation\n  --compare --before preview --without-rancher  -> Rancher's isolation switched off\n  --compare --without-rancher                   today -> calico-pni alone\n\nExit codes: 0 evaluated, 1 bad input, 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, prog+" matrix: "+format+"\n", a...)
		return code
	}
	switch {
	case *by != "project" && *by != "namespace":
		return fail(exitUsage, "--by %q: use project or namespace", *by)
	case *port < 0 || *port > 65535:
		return fail(exitUsage, "--port %d: use a port from 1 to 65535", *port)
	case *output != "text" && *output != "csv" && *output != "json" && *output != "html":
		return fail(exitUsage, "-o %q: use text, csv, json or html", *output)
	case *compare && in.preview:
		return fail(exitUsage, "give --preview or --compare, not both")
	case *before != "today" && *before != "preview":
		return fail(exitUsage, "--before %q: use today or preview", *before)
	case *before == "preview" && !(*compare && in.withoutRancher):
		return fail(exitUsage, "--before preview compares calico-pni's policies beside Rancher's isolation with them alone: give it with --compare and --without-rancher")
	case in.withoutRancher && !*compare && !in.preview:
		return fail(exitUsage, "--without-rancher changes the state with calico-pni's policies: give it with --preview or --compare")
	case observed.on && (*compare || *output != "text"):
		return fail(exitUsage, "--observed compares one state with the flow logs, in text: leave out --compare and -o")
	}
	proto, err := checkProtocol(*protocol)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if err := in.check(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	loaded, err := in.load(stdin, in.preview || *compare)
	if err != nil {
		return fail(exitInvalid, "%v", err)
	}
	from := ""
	if *compare {
		from = *before
	}
	var seen []flows.Flow
	if observed.on {
		// Read before the evaluation, so that a Goldmane out of reach
		// fails at once.
		if seen, err = observed.list(30 * time.Second); err != nil {
			return fail(exitInvalid, "--observed: %v", err)
		}
	}
	r := matrixReport(in, loaded, *by, proto, uint16(*port), from)
	switch *output {
	case "csv":
		err = report.MatrixCSV(stdout, r)
	case "json":
		err = report.MatrixJSON(stdout, r)
	case "html":
		err = report.MatrixHTML(stdout, r)
	default:
		err = report.MatrixText(stdout, r)
	}
	if err == nil && observed.on {
		state, cluster := "Today's state", loaded.today
		if in.preview {
			state, cluster = "The state with calico-pni's policies (--preview)", in.after(loaded)
		}
		rep := compareObserved(seen, in.index(cluster), cluster.Pods, proto, uint16(*port))
		rep.address, rep.window = observed.address, observed.window
		err = writeObserved(stdout, rep, state)
	}
	if err != nil {
		return fail(exitInvalid, "%v", err)
	}
	for _, n := range loaded.notes {
		fmt.Fprintln(stderr, prog+" matrix: note:", n)
	}
	return exitOK
}

// matrixReport evaluates the matrix of what load read and, when before
// names the state to compare from (today, or preview), the matrix under
// calico-pni's policies beside it.
func matrixReport(in evalInput, loaded *input, by, protocol string, port uint16, before string) report.MatrixReport {
	projects := loaded.projects()
	groupOf := func(ns *evaluator.Namespace) string { return ns.Name }
	if by == "project" {
		groupOf = func(ns *evaluator.Namespace) string {
			if p := projects.Project(ns.Name); p != "" {
				return p
			}
			return noProject
		}
	}
	opts := evaluator.MatrixOptions{Protocol: protocol, Port: port, GroupOf: groupOf}
	r := report.MatrixReport{By: by, Policies: policiesText(in), Owners: owners(loaded)}
	r.Projects, r.System = groupProjects(loaded.today, projects, by)
	if r.System != "" && by == "project" {
		r.Labels = map[string]string{r.System: r.System + " (System)"}
	}
	cluster := loaded.today
	switch {
	case before == "preview":
		cluster = loaded.preview
	case in.preview:
		cluster = in.after(loaded)
	}
	ix := in.index(cluster)
	r.Matrix = ix.Matrix(opts)
	r.Notes = ix.Notes()
	if before != "" {
		setStates(&r, in, before)
		future := in.index(in.after(loaded))
		r.Compare = future.Matrix(opts)
	}
	return r
}

// setStates names the two states a comparison shows, and their policies.
func setStates(r *report.MatrixReport, in evalInput, before string) {
	r.Policies = "today: " + policiesText(evalInput{staged: in.staged})
	after := in
	after.preview = true
	r.ComparePolicies = policiesText(after)
	switch {
	case before == "preview":
		r.Policies = "before: " + policiesText(evalInput{staged: in.staged, preview: true})
		r.Before = "with calico-pni's policies beside Rancher's isolation (--preview)"
		r.After = "with calico-pni's policies alone (--preview --without-rancher)"
		r.Change = "when Rancher's isolation is switched off, calico-pni's policies in place"
	case in.withoutRancher:
		r.After = "with calico-pni's policies alone (--preview --without-rancher)"
		r.Change = "when calico-pni's policies are in place and Rancher's isolation is switched off"
	}
}

// groupProjects gives each group's project ("" for a namespace in no
// project) and the System project, found as calico-pni's generator finds
// them under the configuration given (--config), for the HTML page's
// comparison with plain isolation.
func groupProjects(c *evaluator.Cluster, grouping policies.Projects, by string) (map[string]string, string) {
	projects := map[string]string{}
	for _, ns := range c.Namespaces {
		projects[ns.Name] = grouping.Project(ns.Name)
	}
	system := grouping.System
	if by == "namespace" {
		return projects, system
	}
	groups := map[string]string{noProject: ""}
	for _, p := range projects {
		if p != "" {
			groups[p] = p
		}
	}
	return groups, system
}
