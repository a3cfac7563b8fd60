package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report prints one or more runs of the same benchmark as a Markdown
// table: a single run's figures, or the median and range of several.
func report(w io.Writer, runs []*Result) {
	r := runs[0]
	row := func(what, value, target string) { fmt.Fprintf(w, "| %s | %s | %s |\n", what, value, target) }
	fmt.Fprintf(w, "\n### %d namespaces, %d projects, %d nodes; Calico %s; %s", r.Size.Namespaces, r.Size.Projects, r.Size.Nodes, r.API.Version, r.Mode)
	if r.UserPolicies > 0 {
		fmt.Fprintf(w, "; %d users' NetworkPolicies", r.UserPolicies)
	}
	fmt.Fprintf(w, "; %d run(s)\n\n", len(runs))
	fmt.Fprintln(w, "| measure | value | target |\n|---|---|---|")
	each := func(f func(*Result) float64) []float64 {
		out := make([]float64, len(runs))
		for i, run := range runs {
			out[i] = f(run)
		}
		return out
	}
	seconds := func(f func(*Result) time.Duration) string {
		return spread(each(func(r *Result) float64 { return f(r).Seconds() }), "%.1f s")
	}
	msP := func(f func(*Result) []time.Duration, p float64) string {
		return spread(each(func(r *Result) float64 { return float64(percentile(f(r), p).Milliseconds()) }), "%.0f")
	}
	count := func(f func(*Result) int) string {
		return spread(each(func(r *Result) float64 { return float64(f(r)) }), "%.0f")
	}
	var kinds []string
	for k, n := range r.WritesByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	row("cold start: all policies and statuses written", seconds(func(r *Result) time.Duration { return r.ColdStart }), "")
	row("cold start writes", fmt.Sprintf("%s (%s)", count(func(r *Result) int { return r.Writes }), strings.Join(kinds, ", ")), "")
	row("plain client, same writes, unthrottled", seconds(func(r *Result) time.Duration { return r.PlainClient }), "")
	row("cold start / plain client", spread(each(func(r *Result) float64 { return r.ColdStart.Seconds() / r.PlainClient.Seconds() }), "%.2f"), "≤ 1.2")
	row("steady state writes", fmt.Sprintf("%s (in %s, with %s full refreshes)", count(func(r *Result) int { return r.SteadyWrites }), r.steady, count(func(r *Result) int { return r.SteadyRefreshes })), "0")
	moves := func(r *Result) []time.Duration { return r.MoveLatencies }
	row(fmt.Sprintf("project moves to existing projects p50 / p95 / p99 (n=%d), ms", len(r.MoveLatencies)),
		fmt.Sprintf("%s / %s / %s", msP(moves, 50), msP(moves, 95), msP(moves, 99)), "p99 ≤ 200 ms")
	newMoves := func(r *Result) []time.Duration { return r.NewMoveLatencies }
	row(fmt.Sprintf("project moves to new projects p50 / p95 / p99 (n=%d), ms", len(r.NewMoveLatencies)),
		fmt.Sprintf("%s / %s / %s", msP(newMoves, 50), msP(newMoves, 95), msP(newMoves, 99)), "p99 ≤ 200 ms")
	nodes := func(r *Result) []time.Duration { return r.NodeLatencies }
	row(fmt.Sprintf("node changes p50 / p95 / p99 (n=%d), ms", len(r.NodeLatencies)),
		fmt.Sprintf("%s / %s / %s", msP(nodes, 50), msP(nodes, 95), msP(nodes, 99)), "p99 ≤ 200 ms")
	for i, c := range r.Changes {
		row(c.What+": time, writes", fmt.Sprintf("%s, %s", seconds(func(r *Result) time.Duration { return r.Changes[i].Took }), count(func(r *Result) int { return r.Changes[i].Writes })), "")
	}
	if len(r.Explains) > 0 {
		var took, rss []float64
		for _, x := range runs {
			for _, e := range x.Explains {
				took = append(took, e.Took.Seconds())
				rss = append(rss, float64(e.PeakRSS)/(1<<20))
			}
		}
		row(fmt.Sprintf("`explain --kubeconfig`, one connection (%d runs): wall, peak RSS", len(took)), spread(took, "%.2f s")+", "+spread(rss, "%.0f MiB"), "< 2 s")
	}
	row("daemon peak RSS", spread(each(func(r *Result) float64 { return float64(r.PeakRSS) / (1 << 20) }), "%.0f MiB"), "≤ 120 MiB")
	row("daemon CPU, cold start / whole run", fmt.Sprintf("%s / %s", spread(each(func(r *Result) float64 { return r.ColdStartCPUSeconds }), "%.1f s"), spread(each(func(r *Result) float64 { return r.CPUSeconds }), "%.1f s")), "")
	target := fmt.Sprintf("≤ %d (projects + 25)", r.Size.Projects+25)
	tier := ""
	if r.Tier {
		tier, target = " + its tier", target+" + tier"
	}
	row("Calico policies written", fmt.Sprintf("%d%s", r.Policies, tier), target)
	if r.UserPolicies > 0 {
		row("namespaces whose status lists exposures", count(func(r *Result) int { return r.ExposedNamespaces }), "")
	}
	row("Rancher's own isolation: NetworkPolicies", fmt.Sprintf("%d (np-default and hn-nodes in %d project namespaces)", r.RancherObjects, r.ProjectNamespaces), "")
	row("cleanup: time, writes", fmt.Sprintf("%s, %s (%d namespaces released, %d policies and %d tiers deleted)",
		seconds(func(r *Result) time.Duration { return r.Cleanup.Took }), count(func(r *Result) int { return r.Cleanup.Writes }),
		r.CleanupRemoved.Namespaces, r.CleanupRemoved.Policies, r.CleanupRemoved.Tiers), "")
}

// spread formats the median of values, and their range when they
// differ.
func spread(values []float64, format string) string {
	s := slices.Clone(values)
	slices.Sort(s)
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	out := fmt.Sprintf(format, median)
	if s[0] != s[len(s)-1] {
		out += fmt.Sprintf(" (%s–%s)", fmt.Sprintf(format, s[0]), fmt.Sprintf(format, s[len(s)-1]))
	}
	return out
}
