package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/calico-pni/calico-pni/plan"
)

// DefaultSettle is how long a step that relies on writes of another kind
// waits after them by default: Felix (and Typha) receive namespaces and
// each kind of policy on watches of their own, so a namespace label can
// reach the dataplane before a policy committed before it
// (docs/design.md, "Steps the dataplane cannot overtake"). On a healthy
// cluster an update takes well under a second from the API server to the
// dataplane: Typha batches for at most 100 ms, Felix's calculation graph
// flushes within tens of milliseconds, and its dataplane applies changes
// up to ten times a second; five seconds leave room for a Felix busy with
// a large apply.
const DefaultSettle = 5 * time.Second

// SettleClock remembers when writes of each effect last completed,
// across passes, so that a step waits until what it relies on is older
// than the settle time.
type SettleClock struct {
	mu   sync.Mutex
	last map[plan.Effect]time.Time
}

// Wrote records writes of the given effects completed at a time.
func (s *SettleClock) Wrote(effects plan.Effect, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[plan.Effect]time.Time{}
	}
	for _, e := range []plan.Effect{plan.Widens, plan.Relabels, plan.Narrows} {
		if effects&e != 0 && at.After(s.last[e]) {
			s.last[e] = at
		}
	}
}

// until returns when the writes a step waits for are all older than the
// settle time.
func (s *SettleClock) until(waits plan.Effect, settle time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for e, at := range s.last {
		if waits&e != 0 && at.Add(settle).After(t) {
			t = at.Add(settle)
		}
	}
	return t
}

// Executor runs plans.
type Executor struct {
	Writer *Writer
	// Settle is how long a step waits after the writes of another kind it
	// relies on (DefaultSettle); Clock remembers those writes.
	Settle time.Duration
	Clock  *SettleClock
	// LastWrite, when set, is called for each namespace's last write of a
	// plan that succeeded (the controller records events).
	LastWrite func(plan.NamespaceWrite)
}

// Outcome is what running a plan did.
type Outcome struct {
	Policies, Namespaces *Results
	// Writes counts the writes attempted, by verb.
	Writes map[string]int
	// Settled is how long the plan waited for the dataplane.
	Settled time.Duration
	// Planned is true once every namespace write was attempted.
	Planned bool
}

// Run runs a plan's steps in order, each finished and checked before the
// next. A failed write stops the steps after it, except in the widen step
// a failure of a policy named in tolerated (it failed in the last pass
// too): the plan holds the namespaces that need it, the other namespaces
// go ahead, and only the narrowing steps wait for a pass without
// failures.
func (e *Executor) Run(ctx context.Context, p plan.Plan, tolerated map[string]error) Outcome {
	out := Outcome{Policies: NewResults(), Namespaces: NewResults(), Writes: map[string]int{}}
	pr, nr := out.Policies, out.Namespaces
	lastNamespaceStep := -1
	for i, step := range p.Steps {
		if len(step.Namespaces) > 0 {
			lastNamespaceStep = i
		}
	}
	out.Planned = lastNamespaceStep < 0
	degraded := false
	for i, step := range p.Steps {
		if ctx.Err() != nil {
			return out
		}
		if degraded && step.Makes&plan.Narrows != 0 {
			e.Writer.Log.Info("narrowing writes postponed until the writes before them succeed", "step", step.Name)
			return out
		}
		if !e.Writer.DryRun && !e.waitForDataplane(ctx, step, &out) {
			return out
		}
		before := pr.Failures() + nr.Failures()
		for _, w := range step.Policies {
			out.Writes[w.Verb]++
		}
		out.Writes[plan.Patch] += len(step.Namespaces)
		if len(step.Policies) > 0 {
			e.Writer.ApplyPolicies(ctx, step.Policies, pr)
		}
		if len(step.Namespaces) > 0 {
			e.Writer.PatchNamespaces(ctx, step.Namespaces, nr)
			for _, w := range step.Namespaces {
				if w.Last && nr.Done[w.Name] && !e.Writer.DryRun && e.LastWrite != nil {
					e.LastWrite(w)
				}
			}
		}
		if i == lastNamespaceStep {
			out.Planned = true
		}
		if !e.Writer.DryRun && !step.Empty() {
			e.Clock.Wrote(step.Makes, time.Now())
		}
		if pr.Failures()+nr.Failures() == before {
			continue
		}
		if step.Name != "widen" || nr.Failures() > 0 {
			return out
		}
		for name := range pr.Failed {
			if _, known := tolerated[name]; !known {
				return out
			}
		}
		degraded = true
	}
	return out
}

// waitForDataplane waits, before a step, until the writes it relies on
// are older than the settle time, and says so in the log and the metrics.
// It reports false when ctx ended first.
func (e *Executor) waitForDataplane(ctx context.Context, step plan.Step, out *Outcome) bool {
	if step.Waits == 0 || e.Settle <= 0 {
		return true
	}
	d := time.Until(e.Clock.until(step.Waits, e.Settle))
	if d <= 0 {
		return true
	}
	m := e.Writer.Metrics
	e.Writer.Log.Info("waiting for the dataplane to apply the writes this step relies on", "step", step.Name, "wait", d.Round(time.Millisecond).String(), "writes", len(step.Policies)+len(step.Namespaces))
	m.Settling.Set(1)
	defer m.Settling.Set(0)
	m.SettleWaits.Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		out.Settled += d
		return true
	}
}
