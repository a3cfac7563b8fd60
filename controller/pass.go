package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"

	"github.com/calico-pni/calico-pni/cluster"
)

// pass brings the cluster to the desired state once: it reads the
// cluster, generates the desired state, plans the writes (package plan)
// and runs the plan's steps, each finished and checked before the next.
func (c *Controller) pass(ctx context.Context, refresh bool) (err error) {
	start := time.Now()
	kind := "event"
	if refresh {
		kind = "refresh"
	}
	result := PassResult{Kind: kind, Writes: map[string]int{}, Started: c.passesStarted.Add(1)}
	defer func() { c.record(result, start, err) }()

	w, err := c.ensureAPI(ctx, refresh)
	if err != nil {
		c.ready.Store(false)
		return err
	}
	result.API = w.api
	c.calicoVersion.Store(w.api.Version)
	if err := c.loadPromotions(ctx, refresh); err != nil {
		return err
	}
	state, err := c.read(ctx, w, refresh)
	if err != nil {
		c.o.Metrics.Errors.WithLabelValues("list").Inc()
		return err
	}
	cfg := c.cfg.Load()
	desired, err := c.desired(w, state, cfg)
	if err != nil {
		return err
	}
	var liveTiers []*unstructured.Unstructured
	if w.api.Tiers {
		if liveTiers, err = cluster.ListManagedTiers(ctx, c.o.Dynamic, w.api); err != nil {
			c.o.Metrics.Errors.WithLabelValues("list").Inc()
			return err
		}
	}
	c.specs.Keep(state.Policies)
	p := plan.Pass(plan.Input{
		Desired: desired, API: w.api, Managed: state.Policies, LiveTiers: liveTiers,
		Namespaces: state.Namespaces, Canon: c.specs.Canon, Failed: c.lastFailed,
	})
	for _, name := range p.Kept {
		c.log.Warn("policy left as it is on the server: its new form is invalid", "policy", name)
	}
	if len(p.Moving) > 0 {
		c.log.Info("namespaces move between projects in transit", "namespaces", len(p.Moving), "first", p.Moving[0])
	}
	firstPass := !c.ready.Load()
	ex := &cluster.Executor{
		Writer: &cluster.Writer{Kube: c.o.Kube, Dyn: c.o.Dynamic, API: w.api, DryRun: c.o.DryRun, Workers: c.o.Workers, Metrics: c.o.Metrics, Log: c.log, Memory: c.recent},
		Settle: c.o.Settle, Clock: &c.settle,
		LastWrite: func(w plan.NamespaceWrite) { c.recordNamespaceEvent(w, firstPass) },
	}
	out := ex.Run(ctx, p, c.lastFailed)
	result.Writes, result.Settled = out.Writes, out.Settled
	return c.finish(ctx, start, result, desired, p, out)
}

// read returns what the pass plans on: from the caches, or from the API
// server while the caches are in doubt (doubt.go), with this replica's
// own recent writes in place of what the caches have not seen yet.
func (c *Controller) read(ctx context.Context, w *policyWatch, refresh bool) (*cluster.State, error) {
	var state *cluster.State
	if doubt, breaks := c.inDoubt(); doubt {
		// A watch broke: plan on what the API server holds (doubt.go).
		fresh, agree, err := c.fromServer(ctx, w)
		if err != nil {
			return nil, err
		}
		state = fresh
		c.recent.forget()
		if agree {
			c.trustedBreaks.Store(breaks)
			c.log.Info("the caches agree with the API server: passes read from them again")
		} else {
			c.log.Info("the caches are behind the API server (a watch broke, or this replica began to lead): this pass read everything from it")
		}
	} else {
		state = c.fromCaches(w)
		if refresh {
			// A refresh re-reads from the API server what the schedule is
			// for: the nodes and the API endpoints behind the kube-api policy,
			// and calico-pni's own policies. Namespaces, Services and pods come
			// from the watch caches, which client-go re-lists by itself
			// whenever a watch breaks; re-listing ten thousand namespaces here
			// would only delay the passes that follow events.
			if err := c.refreshFromServer(ctx, w.api, state); err != nil {
				return nil, err
			}
			// The policies were read from the server, which has every write
			// of this replica: none needs to stand in for the cache. (A
			// policy created and deleted between two passes would otherwise
			// stand in until a watch broke.)
			c.recent.forgetPolicies()
		}
	}
	c.recent.apply(state)
	state.Snap.CalicoVersion = w.api.Version
	state.Snap.Promoted = c.promotedReasons()
	return state, nil
}

// desired generates the desired state, reports what it found, and
// checks that the Calico API serves what the configuration asks for. A
// move that was interrupted is finished first, to the projects it was
// planned for (plan.InTransit); the namespaces' present projects are
// planned in the next pass.
func (c *Controller) desired(w *policyWatch, state *cluster.State, cfg *config.Config) (policies.Desired, error) {
	snap := state.Snap
	if moving := plan.InTransit(state.Namespaces); len(moving) > 0 {
		c.log.Info("finishing a move of namespaces between projects that was interrupted", "namespaces", len(moving))
		snap = snap.WithProjects(moving)
		c.enqueue(passKey)
	}
	desired := policies.Generate(snap, cfg)
	c.reportProblems(desired.Problems)
	c.reportRancher(desired.RancherNamespaces)
	seen := map[string]bool{}
	exposed := c.findExposures(w, state, &desired, seen)
	c.capturePrediction(w, state, seen)
	c.forgetModels(seen)
	c.o.Metrics.ExposedNamespaces.Set(float64(exposed))
	c.addPending(&desired, state)
	if !w.api.Staged && slices.ContainsFunc(desired.Policies, func(p calico.Policy) bool { return p.Staged }) {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		return desired, fmt.Errorf("staging isolation (rollout: stage, or projects.stage) needs Calico's staged policies, which Calico 3.30 and later serve; %s serves none (Calico %s): set rollout: enforce and leave projects.stage empty, or upgrade Calico", w.api.GroupVersion(), w.api.Version)
	}
	if desired.Tier != nil && !w.api.Tiers {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		if cfg.Enforcement == config.EnforcementAuto {
			return desired, fmt.Errorf("enforcement auto chose calico-pni's own tier because the cluster runs Calico %s, but %s serves no Tier objects: set enforcement to default-tier", w.api.Version, w.api.GroupVersion())
		}
		return desired, fmt.Errorf("enforcement %s puts calico-pni's policies in a tier of its own, but %s serves no Tier objects (Calico %s; tiers need Calico 3.29 or later): set enforcement to default-tier or auto, or upgrade Calico", cfg.Enforcement, w.api.GroupVersion(), w.api.Version)
	}
	return desired, nil
}

// record keeps the summary of a finished pass and counts it.
func (c *Controller) record(result PassResult, start time.Time, err error) {
	result.Duration, result.Err = time.Since(start), err
	outcome := "ok"
	if err != nil {
		outcome = "error"
		c.log.Error("pass failed; retrying with back-off", "kind", result.Kind, "error", err)
	}
	c.o.Metrics.Passes.WithLabelValues(result.Kind, outcome).Inc()
	c.o.Metrics.PassDuration.Observe(result.Duration.Seconds())
	c.mu.Lock()
	defer c.mu.Unlock()
	result.Seq = c.last.Seq + 1
	c.last = result
	if c.lastOf == nil {
		c.lastOf = map[string]PassResult{}
	}
	c.lastOf[result.Kind] = result
}

// finish records the outcome of a pass: metrics, readiness, the log line,
// and the failed writes (which the next pass's plan reads).
func (c *Controller) finish(ctx context.Context, start time.Time, result PassResult, desired policies.Desired, p plan.Plan, out cluster.Outcome) error {
	var errs []error
	c.lastFailed = map[string]error{}
	for _, r := range []*cluster.Results{out.Policies, out.Namespaces} {
		for _, name := range sortedKeys(r.Failed) {
			errs = append(errs, r.Failed[name])
			c.lastFailed[name] = r.Failed[name]
		}
	}
	c.o.Metrics.ManagedPolicies.Set(float64(len(desired.Policies)))
	c.o.Metrics.InvalidPolicies.Set(float64(len(desired.Invalid)))
	c.o.Metrics.SetNamespaces(p.States)
	if len(errs) > 0 {
		c.o.Metrics.Errors.WithLabelValues("write").Add(float64(len(errs)))
	}
	if ctx.Err() == nil && out.Planned {
		// Every namespace was planned and every write attempted.
		c.ready.Store(true)
	}
	total := 0
	for _, n := range result.Writes {
		total += n
	}
	if total > 0 || len(errs) > 0 {
		c.log.Info("pass done", "kind", result.Kind, "writes", result.Writes, "errors", len(errs), "settled", result.Settled.String(), "duration", time.Since(start).String())
	} else {
		c.log.Debug("pass done, nothing to write", "kind", result.Kind, "duration", time.Since(start).String())
	}
	return errors.Join(errs...)
}

// refreshFromServer replaces the nodes, the API endpoints and the managed
// policies of state with what the API server holds now.
func (c *Controller) refreshFromServer(ctx context.Context, api calico.API, state *cluster.State) error {
	nodes, err := c.o.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	state.AddNodes(cluster.Pointers(nodes.Items))
	slices, err := c.o.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: cluster.KubernetesSliceSelector})
	if err != nil {
		return fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	state.Snap.APIEndpoints = policies.APIEndpointsFrom(cluster.Pointers(slices.Items))
	if state.Policies, err = cluster.ListManaged(ctx, c.o.Dynamic, api); err != nil {
		return err
	}
	return nil
}

// fromCaches builds the cluster state from the informers.
func (c *Controller) fromCaches(w *policyWatch) *cluster.State {
	s := &cluster.State{}
	s.AddNamespaces(typed[corev1.Namespace](c.namespaces.GetStore().List()))
	s.AddNodes(typed[corev1.Node](c.nodes.GetStore().List()))
	s.Snap.APIEndpoints = policies.APIEndpointsFrom(typed[discoveryv1.EndpointSlice](c.endpoints.GetStore().List()))
	s.AddServices(typed[corev1.Service](c.services.GetStore().List()))
	s.AddPods(typed[corev1.Pod](c.pods.GetStore().List()))
	s.AddRancherPolicies(typed[networkingv1.NetworkPolicy](c.networkPolicies.GetStore().List()))
	s.Policies = w.managed()
	return s
}

func typed[T any](items []any) []*T {
	out := make([]*T, 0, len(items))
	for _, item := range items {
		if t, ok := item.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}
