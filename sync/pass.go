package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// pass brings the cluster to the desired state once, in the steps
// described in steps.go: hold, widen, namespaces, baseline, narrow,
// release. A namespace therefore never loses an allow it still needs, is
// never isolated before its allows exist, and no single write denies what
// both the state before the pass and the state after it allow.
func (c *Controller) pass(ctx context.Context, refresh bool) (err error) {
	start := time.Now()
	kind := "event"
	if refresh {
		kind = "refresh"
	}
	result := PassResult{Kind: kind, Writes: map[string]int{}, Started: c.passesStarted.Add(1)}
	defer func() {
		result.Duration, result.Err = time.Since(start), err
		outcome := "ok"
		if err != nil {
			outcome = "error"
			c.log.Error("pass failed; retrying with back-off", "kind", kind, "error", err)
		}
		c.o.Metrics.Passes.WithLabelValues(kind, outcome).Inc()
		c.o.Metrics.PassDuration.Observe(result.Duration.Seconds())
		c.mu.Lock()
		result.Seq = c.last.Seq + 1
		c.last = result
		if c.lastOf == nil {
			c.lastOf = map[string]PassResult{}
		}
		c.lastOf[kind] = result
		c.mu.Unlock()
	}()

	w, err := c.ensureAPI(ctx, refresh)
	if err != nil {
		c.ready.Store(false)
		return err
	}
	result.API = w.api
	var state *clusterState
	if doubt, breaks := c.inDoubt(); doubt {
		// A watch broke: plan on what the API server holds (doubt.go).
		fresh, agree, err := c.fromServer(ctx, w)
		if err != nil {
			c.o.Metrics.Errors.WithLabelValues("list").Inc()
			return err
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
				c.o.Metrics.Errors.WithLabelValues("list").Inc()
				return err
			}
			// The policies were read from the server, which has every write
			// of this replica: none needs to stand in for the cache. (A
			// policy created and deleted between two passes would otherwise
			// stand in until a watch broke.)
			c.recent.forgetPolicies()
		}
	}
	c.recent.apply(state)
	state.snap.CalicoVersion = w.api.Version

	cfg := c.cfg.Load()
	desired := policies.Generate(state.snap, cfg)
	c.reportProblems(desired.Problems)
	exposed := c.findExposures(w, state, &desired)
	c.o.Metrics.ExposedNamespaces.Set(float64(exposed))

	if !w.api.Staged && slices.ContainsFunc(desired.Policies, func(p calico.Policy) bool { return p.Staged }) {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		return fmt.Errorf("staging isolation (rollout: stage, or projects.stage) needs Calico's staged policies, which Calico 3.30 and later serve; %s serves none (Calico %s): set rollout: enforce and leave projects.stage empty, or upgrade Calico", w.api.GroupVersion(), w.api.Version)
	}
	var liveTiers []*unstructured.Unstructured
	if desired.Tier != nil && !w.api.Tiers {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		if cfg.Enforcement == config.EnforcementAuto {
			return fmt.Errorf("enforcement auto chose calico-pni's own tier because the cluster runs Calico %s, but %s serves no Tier objects: set enforcement to default-tier", w.api.Version, w.api.GroupVersion())
		}
		return fmt.Errorf("enforcement %s puts calico-pni's policies in a tier of its own, but %s serves no Tier objects (Calico %s; tiers need Calico 3.29 or later): set enforcement to default-tier or auto, or upgrade Calico", cfg.Enforcement, w.api.GroupVersion(), w.api.Version)
	}
	if w.api.Tiers {
		if liveTiers, err = listManagedTiers(ctx, c.o.Dynamic, w.api); err != nil {
			c.o.Metrics.Errors.WithLabelValues("list").Inc()
			return err
		}
	}

	wr := &writer{kube: c.o.Kube, dyn: c.o.Dynamic, api: w.api, dryRun: c.o.DryRun, workers: c.o.Workers, metrics: c.o.Metrics, log: c.log, recent: c.recent}
	c.specs.keep(state.policies)
	invalid := map[string]error{}
	for _, inv := range desired.Invalid {
		invalid[inv.Name] = inv.Err
	}
	plan := planPolicies(planInput{
		tier: desired.Tier, liveTiers: liveTiers,
		desired: desired.Policies, invalid: invalid, api: w.api,
		managed: state.policies, canon: c.specs.canon, isolatedLive: state.anyIsolated(),
	})
	for _, name := range plan.kept {
		c.log.Warn("policy left as it is on the server: its new form is invalid", "policy", name, "error", invalid[name])
	}
	pr := newResults()
	count := func(changes []policyChange) {
		for _, ch := range changes {
			result.Writes[ch.verb]++
		}
	}
	// writeStep makes one step's writes and reports whether they all
	// succeeded (a failed write stops the steps after it).
	writeStep := func(changes []policyChange) bool {
		before := pr.failures()
		count(changes)
		wr.applyPolicies(ctx, changes, pr)
		return pr.failures() == before && ctx.Err() == nil
	}

	// 1 and 2: calico-pni's tier and hold-open policies, then the allows
	// that widen. A failed widening write only holds the namespaces that
	// need the policy.
	if !writeStep(plan.tierWrites) || !writeStep(plan.hold) {
		return c.finish(ctx, start, result, desired, nil, pr)
	}
	writeStep(plan.widen)

	// 3: namespaces. A baseline about to be written in step 4 counts as in
	// place, unless writing it failed in the last pass.
	baselinePlanned := map[string]bool{}
	for _, ch := range plan.baseline {
		if ch.verb != verbDelete {
			baselinePlanned[ch.name] = true
		}
	}
	lastFailed := c.lastFailed
	inPlace := func(name string) (bool, string) {
		if plan.sufficient[name] || pr.done[name] {
			return true, ""
		}
		if err, bad := invalid[name]; bad {
			return false, "invalid: " + err.Error()
		}
		if err, failed := pr.failed[name]; failed {
			return false, err.Error()
		}
		if baselinePlanned[name] {
			if err, failed := lastFailed[name]; failed {
				return false, err.Error()
			}
			return true, ""
		}
		if plan.late[name] {
			return false, "rewritten after the namespaces of this pass"
		}
		return false, "not written"
	}
	// Namespaces are planned and written a batch at a time, so that a
	// cold start of a large cluster never holds every patch at once.
	nr := newResults()
	firstPass := !c.ready.Load()
	states := map[policies.State]int{}
	for start := 0; start < len(desired.Namespaces); start += namespaceBatch {
		batch := desired.Namespaces[start:min(start+namespaceBatch, len(desired.Namespaces))]
		nsChanges, final := planNamespaces(batch, state.namespaces, inPlace)
		wr.patchNamespaces(ctx, nsChanges, nr)
		if len(nsChanges) > 0 {
			result.Writes[verbPatch] += len(nsChanges)
		}
		for _, ch := range nsChanges {
			if nr.done[ch.name] && !c.o.DryRun {
				c.recordNamespaceEvent(ch, firstPass)
			}
		}
		for _, f := range final {
			states[f.Status.State]++
		}
	}
	if pr.failures() > 0 || nr.failures() > 0 || ctx.Err() != nil {
		if n := len(plan.baseline) + len(plan.narrow) + len(plan.release); n > 0 {
			c.log.Info("baseline and narrowing writes postponed until the writes before them succeed", "writes", n)
		}
		return c.finish(ctx, start, result, desired, states, pr, nr)
	}

	// 4, 5 and 6: the baseline, the allows that narrow (on the object
	// that a union write returned), the hold-open policies.
	for i := range plan.narrow {
		if ch := &plan.narrow[i]; ch.afterUnion {
			if o := pr.objects[ch.name]; o != nil {
				ch.object = mergeForUpdate(o, w.api.Object(ch.policy))
			}
		}
	}
	release := plan.release
	for _, ch := range plan.hold {
		if o := pr.objects[ch.name]; o != nil {
			release = append(release, policyChange{verb: verbDelete, name: ch.name, class: ch.class, object: o})
		}
	}
	for _, step := range [][]policyChange{plan.baseline, plan.narrow, release, plan.tierDeletes} {
		if !writeStep(step) {
			break
		}
	}
	return c.finish(ctx, start, result, desired, states, pr, nr)
}

// finish records the outcome of a pass: metrics, readiness, the log line,
// and the failed writes (which step 3 of the next pass reads).
func (c *Controller) finish(ctx context.Context, start time.Time, result PassResult, desired policies.Desired, states map[policies.State]int, results ...*results) error {
	var errs []error
	c.lastFailed = map[string]error{}
	for _, r := range results {
		for _, name := range sortedKeys(r.failed) {
			errs = append(errs, r.failed[name])
			c.lastFailed[name] = r.failed[name]
		}
	}
	c.o.Metrics.ManagedPolicies.Set(float64(len(desired.Policies)))
	c.o.Metrics.InvalidPolicies.Set(float64(len(desired.Invalid)))
	if states != nil {
		c.o.Metrics.setNamespaces(states)
	}
	if len(errs) > 0 {
		c.o.Metrics.Errors.WithLabelValues("write").Add(float64(len(errs)))
	}
	if states != nil && ctx.Err() == nil {
		// Every namespace was planned and every write attempted.
		c.ready.Store(true)
	}
	total := 0
	for _, n := range result.Writes {
		total += n
	}
	if total > 0 || len(errs) > 0 {
		c.log.Info("pass done", "kind", result.Kind, "writes", result.Writes, "errors", len(errs), "duration", time.Since(start).String())
	} else {
		c.log.Debug("pass done, nothing to write", "kind", result.Kind, "duration", time.Since(start).String())
	}
	return errors.Join(errs...)
}

// refreshFromServer replaces the nodes, the API endpoints and the managed
// policies of state with what the API server holds now.
func (c *Controller) refreshFromServer(ctx context.Context, api calico.API, state *clusterState) error {
	nodes, err := c.o.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	state.addNodes(pointers(nodes.Items))
	slices, err := c.o.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: kubernetesSliceSelector})
	if err != nil {
		return fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	state.snap.APIEndpoints = policies.APIEndpointsFrom(pointers(slices.Items))
	if state.policies, err = listManaged(ctx, c.o.Dynamic, api); err != nil {
		return err
	}
	return nil
}

// fromCaches builds the cluster state from the informers.
func (c *Controller) fromCaches(w *policyWatch) *clusterState {
	s := &clusterState{}
	s.addNamespaces(typed[corev1.Namespace](c.namespaces.GetStore().List()))
	s.addNodes(typed[corev1.Node](c.nodes.GetStore().List()))
	s.snap.APIEndpoints = policies.APIEndpointsFrom(typed[discoveryv1.EndpointSlice](c.endpoints.GetStore().List()))
	s.addServices(typed[corev1.Service](c.services.GetStore().List()))
	s.addPods(typed[corev1.Pod](c.pods.GetStore().List()))
	s.policies = w.managed()
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
