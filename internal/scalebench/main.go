// Command scalebench measures calico-pni at scale on a real API server:
// it starts kube-apiserver and etcd with Calico's CRDs, creates a
// synthetic Rancher cluster, times a plain client making the writes of a
// cold start, runs the real `calico-pni run` as a child process and
// measures its cold start, its writes in a steady state, how fast it
// follows project moves and node address changes, and its memory and CPU.
// docs/benchmarks.md gives the method and the figures.
//
//	go run ./internal/scalebench -namespaces 10000 -projects 1000 -nodes 100
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	var o Options
	flag.IntVar(&o.Size.Namespaces, "namespaces", 1000, "namespaces in the synthetic cluster")
	flag.IntVar(&o.Size.Projects, "projects", 100, "user projects")
	flag.IntVar(&o.Size.Nodes, "nodes", 20, "nodes")
	flag.IntVar(&o.Moves, "moves", 200, "project moves to time")
	flag.IntVar(&o.NodeChanges, "node-changes", 50, "node address changes to time")
	flag.DurationVar(&o.Steady, "steady", 2*time.Minute, "how long to watch an unchanged cluster for writes")
	flag.IntVar(&o.Workers, "workers", 32, "parallel requests of the plain client")
	daemonArgs := flag.String("daemon-args", "", "extra flags for calico-pni run, space separated")
	flag.StringVar(&o.ProfileDir, "profile-dir", "", "write a CPU profile of the cold start and a heap profile at the end here")
	flag.Parse()
	o.DaemonArgs = strings.Fields(*daemonArgs)
	o.Log = os.Stderr
	res, err := Run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
	report(os.Stdout, res)
}

// report prints a result as a Markdown table.
func report(w io.Writer, r *Result) {
	row := func(what, value, target string) { fmt.Fprintf(w, "| %s | %s | %s |\n", what, value, target) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	fmt.Fprintf(w, "\n### %d namespaces, %d projects, %d nodes\n\n", r.Size.Namespaces, r.Size.Projects, r.Size.Nodes)
	fmt.Fprintln(w, "| measure | value | target |\n|---|---|---|")
	var kinds []string
	for k, n := range r.WritesByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	ratio := r.ColdStart.Seconds() / r.PlainClient.Seconds()
	row("cold start: all policies and statuses written", fmt.Sprintf("%.1f s", r.ColdStart.Seconds()), "")
	row("cold start writes", fmt.Sprintf("%d (%s)", r.Writes, strings.Join(kinds, ", ")), "")
	row("plain client, same writes, unthrottled", fmt.Sprintf("%.1f s", r.PlainClient.Seconds()), "")
	row("cold start / plain client", fmt.Sprintf("%.2f", ratio), "≤ 1.5")
	row("steady state writes", fmt.Sprintf("%d (in %s, with %d full refreshes)", r.SteadyWrites, r.steady, r.SteadyRefreshes), "0")
	row(fmt.Sprintf("project moves p50 / p95 / p99 (n=%d)", len(r.MoveLatencies)),
		fmt.Sprintf("%s / %s / %s", ms(percentile(r.MoveLatencies, 50)), ms(percentile(r.MoveLatencies, 95)), ms(percentile(r.MoveLatencies, 99))), "p99 ≤ 500 ms")
	row(fmt.Sprintf("node changes p50 / p95 / p99 (n=%d)", len(r.NodeLatencies)),
		fmt.Sprintf("%s / %s / %s", ms(percentile(r.NodeLatencies, 50)), ms(percentile(r.NodeLatencies, 95)), ms(percentile(r.NodeLatencies, 99))), "p99 ≤ 500 ms")
	row("daemon peak RSS", fmt.Sprintf("%.0f MiB", float64(r.PeakRSS)/(1<<20)), "≤ 150 MiB")
	row("daemon CPU, cold start / whole run", fmt.Sprintf("%.1f s / %.1f s", r.ColdStartCPUSeconds, r.CPUSeconds), "")
	row("Calico policies written", fmt.Sprintf("%d", r.Policies), fmt.Sprintf("≤ %d (projects + 25)", r.Size.Projects+25))
	row("Rancher's own isolation: NetworkPolicies", fmt.Sprintf("%d (np-default and hn-nodes in %d project namespaces)", r.RancherObjects, r.ProjectNamespaces), "")
}
