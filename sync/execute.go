package sync

import (
	"context"
	gosync "sync"
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

// settleClock remembers when writes of each effect last completed, across
// passes, so that a step waits until what it relies on is older than the
// settle time.
type settleClock struct {
	mu   gosync.Mutex
	last map[plan.Effect]time.Time
}

func (s *settleClock) wrote(effects plan.Effect, at time.Time) {
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
func (s *settleClock) until(waits plan.Effect, settle time.Duration) time.Time {
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

// execute runs a plan's steps in order, each finished and checked before
// the next. A failed write stops the steps after it, except in the widen
// step a failure of a policy that already failed in the last pass: the
// plan holds the namespaces that need it, the other namespaces go ahead,
// and only the narrowing steps wait for a pass without failures.
func (c *Controller) execute(ctx context.Context, wr *writer, p plan.Plan, tolerated map[string]error, result *PassResult) (pr, nr *results) {
	pr, nr = newResults(), newResults()
	firstPass := !c.ready.Load()
	degraded := false
	for _, step := range p.Steps {
		if ctx.Err() != nil {
			return
		}
		if degraded && step.Makes&plan.Narrows != 0 {
			c.log.Info("narrowing writes postponed until the writes before them succeed", "step", step.Name)
			return
		}
		if !c.o.DryRun && !c.waitForDataplane(ctx, step, result) {
			return
		}
		before := pr.failures() + nr.failures()
		for _, w := range step.Policies {
			result.Writes[w.Verb]++
		}
		result.Writes[plan.Patch] += len(step.Namespaces)
		if len(step.Policies) > 0 {
			wr.applyPolicies(ctx, step.Policies, pr)
		}
		if len(step.Namespaces) > 0 {
			wr.patchNamespaces(ctx, step.Namespaces, nr)
			for _, w := range step.Namespaces {
				if w.Last && nr.done[w.Name] && !c.o.DryRun {
					c.recordNamespaceEvent(w, firstPass)
				}
			}
		}
		if !c.o.DryRun && !step.Empty() {
			c.settle.wrote(step.Makes, time.Now())
		}
		if pr.failures()+nr.failures() == before {
			continue
		}
		if step.Name != "widen" || nr.failures() > 0 {
			return
		}
		for name := range pr.failed {
			if _, known := tolerated[name]; !known {
				return
			}
		}
		degraded = true
	}
	return
}

// waitForDataplane waits, before a step, until the writes it relies on
// are older than the settle time, and says so in the log and the metrics.
// It reports false when ctx ended first.
func (c *Controller) waitForDataplane(ctx context.Context, step plan.Step, result *PassResult) bool {
	if step.Waits == 0 || c.o.Settle <= 0 {
		return true
	}
	d := time.Until(c.settle.until(step.Waits, c.o.Settle))
	if d <= 0 {
		return true
	}
	c.log.Info("waiting for the dataplane to apply the writes this step relies on", "step", step.Name, "wait", d.Round(time.Millisecond).String(), "writes", len(step.Policies)+len(step.Namespaces))
	c.o.Metrics.Settling.Set(1)
	defer c.o.Metrics.Settling.Set(0)
	c.o.Metrics.SettleWaits.Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		result.Settled += d
		return true
	}
}
