package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/calico-pni/calico-pni/internal/replay"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

// The soak judges every operation twice: with calico-pni's own evaluator
// (invariant.go, write by write in the order the API server received
// them), and here with the reference evaluator of internal/replay, which
// shares no code with the product, on the writes in the order etcd
// committed them. A bug the product's evaluator shares with its
// generator cannot hide a gap from the second.

// replayTotals adds up what the replays of a run found.
type replayTotals struct {
	Transitions, Writes, States, Verdicts, Gaps int
}

// captureReplay lists what decides connections, for the reference
// evaluator.
func (s *soak) captureReplay() (*replay.State, error) {
	return replay.Capture(context.Background(), s.e.Dynamic)
}

// replayWrites judges the writes between two quiet points with the
// reference evaluator: the writes of the operation itself (and of the
// second writer) change the inputs and are replayed first; then every
// committed write of calico-pni (its replicas and its cleanup), one at a
// time, must keep the verdicts the state before them and the state at
// the next quiet point agree on.
func (s *soak) replayWrites(op int, what string, writes []testbed.Write, after *replay.State) {
	fail := func(err error) {
		s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d (%s): replay: %v (replay: -seed %d -ops %d)", op, what, err, s.o.Seed, op))
	}
	commits, err := replay.Order(writes)
	if err != nil {
		fail(err)
		return
	}
	start := s.replayBefore.Clone()
	var own []testbed.Write
	for _, w := range commits.Writes {
		if slices.Contains(calicoPNIWriters, w.Writer) {
			own = append(own, w)
			continue
		}
		if err := start.Apply(w); err != nil {
			fail(fmt.Errorf("the operation's write %s: %w", w, err))
			return
		}
	}
	if len(own) == 0 {
		return
	}
	probes, err := replay.SyntheticProbes(start, after)
	if err != nil {
		fail(err)
		return
	}
	r := replay.Check(start, own, probes)
	t := &s.rep.Replay
	t.Transitions++
	t.Writes += r.Writes
	t.States += r.States
	t.Verdicts += r.Verdicts
	t.Gaps += len(r.Gaps)
	for _, e := range r.Errors {
		fail(fmt.Errorf("%s", e))
	}
	for i, g := range r.Gaps {
		if i == 5 {
			s.rep.Violations = append(s.rep.Violations, fmt.Sprintf("operation %d (%s): %d more gaps (reference evaluator)", op, what, len(r.Gaps)-5))
			break
		}
		s.rep.Violations = append(s.rep.Violations, fmt.Sprintf("operation %d (%s), reference evaluator: gap %s (replay: -seed %d -ops %d)", op, what, g, s.o.Seed, op))
	}
}
