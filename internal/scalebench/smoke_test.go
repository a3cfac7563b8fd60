package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/synthetic"
)

// TestSmoke runs the whole benchmark on 200 namespaces, so that it cannot
// rot between the runs recorded in docs/benchmarks.md: on Calico 3.28
// (default tier only) with users' NetworkPolicies, and on Calico 3.30 in
// tier mode, enforcing and staging everything, where the mode switch and
// a promotion run too. It checks
// what the benchmark must get right, never how fast: speed is for the
// full run.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	for _, tc := range []struct {
		calico       string
		rollout      string
		userPolicies int
		changes      []string
	}{
		{calico: "3.28", rollout: config.RolloutEnforce, userPolicies: 40},
		{calico: "3.30", rollout: config.RolloutEnforce, changes: []string{"enforcement tier → default-tier", "enforcement default-tier → tier", "stage 5 enforced projects", "promote 5 staged projects"}},
		{calico: "3.30", rollout: config.RolloutStage, changes: []string{"enforcement tier → default-tier", "enforcement default-tier → tier", "promote 5 staged projects"}},
	} {
		t.Run("calico "+tc.calico+" rollout "+tc.rollout, func(t *testing.T) {
			cfg := config.Default()
			cfg.Rollout = tc.rollout
			var log bytes.Buffer
			o := Options{
				Size:   synthetic.Size{Namespaces: 200, Projects: 20, Nodes: 5},
				Calico: tc.calico, UserPolicies: tc.userPolicies, Config: cfg,
				Moves: 10, NodeChanges: 5, Promote: 5, Explains: 1, Steady: 6 * time.Second, Workers: 8, Log: &log,
				DaemonArgs: []string{"--settle", "1s"},
				Cleanup:    CleanupFlags{Workers: 8, QPS: 500, Burst: 1000, Settle: time.Second},
			}
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			checkSmoke(t, o, res, tc.changes)
		})
	}
}

func checkSmoke(t *testing.T, o Options, res *Result, changes []string) {
	t.Helper()
	if res.ColdStart <= 0 || res.PlainClient <= 0 {
		t.Errorf("cold start %s, plain client %s", res.ColdStart, res.PlainClient)
	}
	created := res.WritesByKind["create GlobalNetworkPolicy"] + res.WritesByKind["create StagedGlobalNetworkPolicy"]
	if created != res.Policies {
		t.Errorf("the daemon created %d policies, the generator wants %d", created, res.Policies)
	}
	if res.SteadyWrites != 0 || res.SteadyRefreshes == 0 {
		t.Errorf("steady state: %d writes over %d refreshes; want none over at least one", res.SteadyWrites, res.SteadyRefreshes)
	}
	if len(res.MoveLatencies) == 0 || len(res.NewMoveLatencies) == 0 || len(res.NodeLatencies) != o.NodeChanges {
		t.Errorf("timed %d moves, %d to new projects, and %d node changes", len(res.MoveLatencies), len(res.NewMoveLatencies), len(res.NodeLatencies))
	}
	if res.Policies > o.Size.Projects+25 {
		t.Errorf("%d policies for %d projects", res.Policies, o.Size.Projects)
	}
	if o.UserPolicies > 0 && res.ExposedNamespaces == 0 {
		t.Errorf("%d users' NetworkPolicies exposed no namespace", o.UserPolicies)
	}
	if len(res.Explains) != o.Explains {
		t.Errorf("timed %d runs of explain --kubeconfig, want %d", len(res.Explains), o.Explains)
	}
	for _, e := range res.Explains {
		if e.Took <= 0 || e.PeakRSS <= 0 {
			t.Errorf("explain --kubeconfig: %s, peak RSS %d: not measured", e.Took, e.PeakRSS)
		}
	}
	if res.PeakRSS <= 0 || res.CPUSeconds <= 0 {
		t.Errorf("peak RSS %d, CPU %f: not measured", res.PeakRSS, res.CPUSeconds)
	}
	var got []string
	for _, c := range res.Changes {
		got = append(got, c.What)
		if c.Took <= 0 || c.Writes == 0 {
			t.Errorf("%s: %s, %d writes", c.What, c.Took, c.Writes)
		}
	}
	if strings.Join(got, "; ") != strings.Join(changes, "; ") {
		t.Errorf("changes timed: %q, want %q", got, changes)
	}
	// Every namespace's labels and status go, and every policy, those the
	// moves added included.
	if res.CleanupRemoved.Namespaces < res.ProjectNamespaces || res.CleanupRemoved.Policies < res.Policies || res.Cleanup.Writes == 0 {
		t.Errorf("cleanup released %d namespaces and deleted %d policies in %d writes; the cluster had %d project namespaces and %d policies",
			res.CleanupRemoved.Namespaces, res.CleanupRemoved.Policies, res.Cleanup.Writes, res.ProjectNamespaces, res.Policies)
	}
	if res.Tier && res.CleanupRemoved.Tiers != 1 {
		t.Errorf("cleanup deleted %d tiers, want calico-pni's", res.CleanupRemoved.Tiers)
	}
	var out bytes.Buffer
	report(&out, []*Result{res})
	for _, want := range []string{"cold start / plain client", "steady state writes | 0", "project moves to new projects p50", "`explain --kubeconfig`, one connection", "cleanup: time, writes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}
