package controller

import (
	"context"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/policies"
)

// Evidence is calico-pni's reading of Calico's flow logs: the client that
// streams them from Goldmane and the store it fills. The client runs on
// a goroutine of its own; the controller only reads the store, whose
// queries never wait on the network.
type Evidence struct {
	Client *flows.Client
	Store  *flows.Store
}

// Defaults of the evidence loop.
const (
	// DefaultEvidenceRefresh is how often the pending denies are summarised
	// into the staged namespaces' status, the promotion gate is run and
	// predictions are compared with observed flows: the status of a
	// staged namespace changes at most this often.
	DefaultEvidenceRefresh = 5 * time.Minute
	// DefaultEvidencePoll is how often the loop looks whether the
	// evidence became available or unavailable.
	DefaultEvidencePoll = 5 * time.Second
	// evidenceSettle is how long evidence must have held before the first
	// summary replaces what the statuses say: long enough for Goldmane's
	// backfill of the window to arrive, so that a restart of calico-pni
	// does not rewrite every staged namespace twice.
	evidenceSettle = 30 * time.Second
)

// SetEvidence puts a new flow-log reading in force (nil: flow logs are
// not read). The staged namespaces keep what their status says until
// the new reading has settled.
func (c *Controller) SetEvidence(e *Evidence) {
	c.evidence.Store(e)
	c.view.Store(nil)
	c.enqueue(passKey)
}

// evidenceLoop is the state of watchEvidence, touched by it alone
// (stagedSince also by the reports, under mu).
type evidenceLoop struct {
	current     *Evidence
	available   *bool
	started     time.Time
	lastRefresh time.Time
	// lastCompared is the end of the newest flow compared with a
	// prediction; reported holds the disagreements already announced.
	lastCompared time.Time
	reported     map[string]bool
	// warnedNoRecord: the gate said once that it cannot promote.
	warnedNoRecord bool

	mu sync.Mutex
	// stagedSince is when each staged project was first seen staged;
	// zero for those staged when the evidence began.
	stagedSince map[string]time.Time
	first       bool
}

// watchEvidence follows the flow evidence until ctx ends: it reports
// when it becomes available or unavailable, and every EvidenceRefresh it
// summarises the pending denies for the statuses and metrics, runs the
// promotion gate and compares predictions with what Felix did. Nothing
// here runs in a pass, and a pass never waits for it.
func (c *Controller) watchEvidence(ctx context.Context) {
	t := time.NewTicker(c.o.EvidencePoll)
	defer t.Stop()
	for {
		c.evidenceTick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Controller) evidenceTick(ctx context.Context) {
	l := &c.loop
	ev := c.evidence.Load()
	if ev != l.current {
		l.current, l.available, l.lastRefresh, l.lastCompared = ev, nil, time.Time{}, time.Time{}
		l.started = time.Now()
		l.mu.Lock()
		l.stagedSince, l.first = map[string]time.Time{}, true
		l.mu.Unlock()
		if ev == nil {
			c.o.Metrics.FlowEvidenceAvailable.Set(0)
			c.o.Metrics.SetPending(nil)
		}
	}
	if ev == nil {
		return
	}
	st := ev.Client.Status()
	c.noteAvailability(st)
	now := time.Now()
	due := now.Sub(l.lastRefresh) >= c.o.EvidenceRefresh
	if l.lastRefresh.IsZero() {
		// The first summary waits until the backfill has arrived, or,
		// without evidence, as long again before it says so.
		settle := min(evidenceSettle, c.o.EvidenceRefresh)
		due = now.Sub(l.started) >= settle && (!st.Available() || now.Sub(st.EvidenceSince) >= settle)
	}
	if !due {
		return
	}
	l.lastRefresh = now
	c.refreshEvidence(ctx, ev, st, now)
}

// refreshEvidence summarises the pending denies, and while this replica
// leads runs the promotion gate and compares predictions.
func (c *Controller) refreshEvidence(ctx context.Context, ev *Evidence, st flows.Status, _ time.Time) {
	nss := c.namespaceFacts()
	now := c.o.GateClock()
	staged := c.stagedProjects(nss, now)
	if !st.Available() {
		// Counts from a broken record would read as fewer denies than
		// there are: the statuses say why there is none instead.
		c.showView(&pendingView{zero: &policies.Pending{Unavailable: c.unavailableReason(st)}})
		c.o.Metrics.SetPending(nil)
		c.log.Info("flow evidence", "status", c.evidenceLine(st), "stagedProjects", len(staged))
		return
	}
	sum := flows.Summarize(ev.Store.Pending(), nss.projectOf, 0)
	view := summarize(sum, ev.Store.WindowLength())
	cfg := c.cfg.Load()
	gate := flows.Gate(now, cfg.Projects.Promote, staged, ev.Store.Evidence(), nss.projectOf)
	view.gate = gateView(gate)
	for _, r := range gate {
		c.log.Debug("promotion gate", "project", r.Project, "ready", r.Ready, "quietSince", r.QuietSince, "unexpected", r.Unexpected, "accepted", r.Accepted, "reason", r.Reason)
	}
	c.showView(view)
	c.o.Metrics.SetPending(pendingByProject(sum, staged, nss))
	c.log.Info("flow evidence", "status", c.evidenceLine(st), "pendingDenies", wallFlows(sum), "namespaces", len(view.byNamespace), "stagedProjects", len(staged))
	if !c.leading() {
		return
	}
	if cfg.Projects.Promote.Automatic {
		c.promoteQuiet(ctx, gate, st)
	}
	c.comparePredictions(ev, nss)
}

// showView puts a new summary in force for the statuses, and starts a
// pass when it differs from the one in force.
func (c *Controller) showView(view *pendingView) {
	if old := c.view.Load(); old == nil || !reflect.DeepEqual(old, view) {
		c.view.Store(view)
		c.enqueue(passKey)
	}
}

// leading reports whether this replica leads now.
func (c *Controller) leading() bool { return c.queue.Load() != nil }

// namespaceFacts is what the evidence reads of each namespace, from the
// cache: its trusted project and whether it is staged or isolated now.
type namespaceFacts struct {
	project          map[string]string
	staged, isolated map[string]bool
	labels           map[string]map[string]string
}

func (n namespaceFacts) projectOf(ns string) string { return n.project[ns] }

func (c *Controller) namespaceFacts() namespaceFacts {
	list := typed[corev1.Namespace](c.namespaces.GetStore().List())
	n := namespaceFacts{project: make(map[string]string, len(list)), staged: map[string]bool{}, isolated: map[string]bool{},
		labels: make(map[string]map[string]string, len(list))}
	for _, ns := range list {
		n.project[ns.Name] = ns.Labels[policies.ProjectLabel]
		n.labels[ns.Name] = ns.Labels
		if ns.Labels[policies.StagedLabel] == "true" {
			n.staged[ns.Name] = true
		}
		if ns.Labels[policies.IsolatedLabel] == "true" {
			n.isolated[ns.Name] = true
		}
	}
	return n
}

// stagedProjects returns the projects that have a staged namespace now,
// each with when this replica first saw it staged (zero for those staged
// before the evidence began: the gate then counts from the evidence).
func (c *Controller) stagedProjects(nss namespaceFacts, now time.Time) []flows.StagedProject {
	l := &c.loop
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []flows.StagedProject
	for ns := range nss.staged {
		p := nss.project[ns]
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		since, known := l.stagedSince[p]
		if !known {
			if !l.first {
				since = now
			}
			l.stagedSince[p] = since
		}
		out = append(out, flows.StagedProject{Project: p, Since: since})
	}
	for p := range l.stagedSince {
		if !seen[p] {
			delete(l.stagedSince, p)
		}
	}
	l.first = false
	return out
}

// pendingByProject is the metric: every staged project's wall denies,
// zero for those without any, and under "" those of staged namespaces
// isolated on their own; a project that is not staged has none.
func pendingByProject(sum flows.Summary, staged []flows.StagedProject, nss namespaceFacts) map[string]int64 {
	out := map[string]int64{}
	for _, sp := range staged {
		out[sp.Project] = 0
	}
	for _, p := range sum.Projects {
		// Denies of a project enforced since stay in the window, but
		// are pending no more.
		if _, ok := out[p.Project]; ok && p.Project != "" {
			out[p.Project] += p.Flows
		}
	}
	for ns := range nss.staged {
		if nss.project[ns] == "" {
			out[""] = 0 // a series even without denies
			break
		}
	}
	for _, ns := range sum.Namespaces {
		if nss.staged[ns.Namespace] && nss.project[ns.Namespace] == "" {
			out[""] += ns.Flows
		}
	}
	return out
}

func wallFlows(sum flows.Summary) int64 {
	var n int64
	for _, p := range sum.Projects {
		n += p.Flows
	}
	return n
}
