package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/internal/synthetic"
)

// TestSmoke runs the whole benchmark on 200 namespaces, so that it cannot
// rot between the runs recorded in docs/benchmarks.md. It checks what the
// benchmark must get right, never how fast: speed is for the full run.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	var log bytes.Buffer
	o := Options{
		Size:  synthetic.Size{Namespaces: 200, Projects: 20, Nodes: 5},
		Moves: 10, NodeChanges: 5, Steady: 6 * time.Second, Workers: 8, Log: &log,
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.ColdStart <= 0 || res.PlainClient <= 0 {
		t.Errorf("cold start %s, plain client %s", res.ColdStart, res.PlainClient)
	}
	if res.WritesByKind["create GlobalNetworkPolicy"] != res.Policies {
		t.Errorf("the daemon created %d policies, the generator wants %d", res.WritesByKind["create GlobalNetworkPolicy"], res.Policies)
	}
	if res.SteadyWrites != 0 || res.SteadyRefreshes == 0 {
		t.Errorf("steady state: %d writes over %d refreshes; want none over at least one", res.SteadyWrites, res.SteadyRefreshes)
	}
	if len(res.MoveLatencies) == 0 || len(res.NodeLatencies) != o.NodeChanges {
		t.Errorf("timed %d moves and %d node changes", len(res.MoveLatencies), len(res.NodeLatencies))
	}
	if res.Policies > o.Size.Projects+25 {
		t.Errorf("%d policies for %d projects", res.Policies, o.Size.Projects)
	}
	if res.PeakRSS <= 0 || res.CPUSeconds <= 0 {
		t.Errorf("peak RSS %d, CPU %f: not measured", res.PeakRSS, res.CPUSeconds)
	}
	var out bytes.Buffer
	report(&out, res)
	for _, want := range []string{"cold start / plain client", "steady state writes | 0", "project moves p50"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
