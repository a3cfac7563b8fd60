package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// report is what a run measured.
type report struct {
	Seed   int64
	Ops    map[string]int
	Faults int
	// Converge is, per operation, the time from the operation to the next
	// quiet point.
	Converge []time.Duration
	// Writes counts the replicas' writes checked; Checked the connection
	// verdicts checked after them.
	Writes, Checked int
	Indeterminate   int
	// Replay is what the reference evaluator judged; Stated counts the
	// oracle's verdicts checked at quiet points (with both evaluators).
	Replay replayTotals
	Stated int
	// WrongVerdicts counts the verdicts that broke the invariant;
	// Violations names the first of each write.
	WrongVerdicts int
	CheckTime     time.Duration
	Duration      time.Duration
	Violations    []string
	Overlaps      []string
	Failures      []string
}

func newReport(seed int64) *report { return &report{Seed: seed, Ops: map[string]int{}} }

func (r *report) count(op operation) {
	r.Ops[op.name]++
	if op.fault {
		r.Faults++
	}
}

func (r *report) failed() bool {
	return len(r.Violations) > 0 || len(r.Overlaps) > 0 || len(r.Failures) > 0
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func (r *report) String() string {
	var b strings.Builder
	total := 0
	for _, n := range r.Ops {
		total += n
	}
	fmt.Fprintf(&b, "seed %d: %d operations (%d faults) in %s\n", r.Seed, total, r.Faults, r.Duration.Round(time.Second))
	for _, name := range slices.Sorted(maps.Keys(r.Ops)) {
		fmt.Fprintf(&b, "  %-40s %d\n", name, r.Ops[name])
	}
	fmt.Fprintf(&b, "convergence p50 %s, p99 %s, max %s\n", percentile(r.Converge, 0.5).Round(time.Millisecond),
		percentile(r.Converge, 0.99).Round(time.Millisecond), percentile(r.Converge, 1).Round(time.Millisecond))
	fmt.Fprintf(&b, "replica writes checked %d, connection verdicts checked %d (%s), indeterminate %d\n", r.Writes, r.Checked, r.CheckTime.Round(time.Millisecond), r.Indeterminate)
	fmt.Fprintf(&b, "reference evaluator: %d transitions, %d committed writes replayed, %d states, %d verdicts checked, %d gaps\n",
		r.Replay.Transitions, r.Replay.Writes, r.Replay.States, r.Replay.Verdicts, r.Replay.Gaps)
	fmt.Fprintf(&b, "stated verdicts checked at quiet points (both evaluators): %d\n", r.Stated)
	fmt.Fprintf(&b, "violations %d (writes that broke the invariant; %d verdicts), overlapping writers %d, failures %d\n", len(r.Violations), r.WrongVerdicts, len(r.Overlaps), len(r.Failures))
	for _, list := range [][]string{r.Violations, r.Overlaps, r.Failures} {
		for i, v := range list {
			if i == 20 {
				fmt.Fprintf(&b, "  ... %d more\n", len(list)-20)
				break
			}
			fmt.Fprintln(&b, "  "+v)
		}
	}
	return b.String()
}
