package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// pass brings the cluster to the desired state once. The order of its
// steps is the safety argument of calico-pni:
//
//  1. create and update allow policies;
//  2. create and update baseline policies;
//  3. patch namespaces: switching isolation on only for namespaces whose
//     policies are all in place, and off for those that leave;
//  4. delete policies no longer wanted, baseline first, and only if every
//     earlier step succeeded.
//
// A namespace therefore never loses an allow it still needs, and is never
// isolated before its allows exist.
func (c *Controller) pass(ctx context.Context, refresh bool) (err error) {
	start := time.Now()
	kind := "event"
	if refresh {
		kind = "refresh"
	}
	result := PassResult{Kind: kind, Writes: map[string]int{}}
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
	state := c.fromCaches(w)
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
	}
	c.recent.apply(state)
	state.snap.CalicoVersion = w.api.Version

	cfg := c.cfg.Load()
	desired := policies.Generate(state.snap, cfg)
	c.reportProblems(desired.Problems)

	wr := &writer{kube: c.o.Kube, dyn: c.o.Dynamic, api: w.api, dryRun: c.o.DryRun, workers: c.o.Workers, metrics: c.o.Metrics, log: c.log, recent: c.recent}
	c.specs.keep(state.policies)
	writes, deletes, upToDate := planPolicies(desired.Policies, w.api, state.policies, c.specs.canon)
	pr := newResults()
	for _, class := range []calico.Class{calico.ClassAllow, calico.ClassBaseline} {
		var step []policyChange
		for _, ch := range writes {
			if ch.class == class {
				step = append(step, ch)
				result.Writes[ch.verb]++
			}
		}
		wr.writePolicies(ctx, step, pr)
	}

	invalid := map[string]error{}
	for _, inv := range desired.Invalid {
		invalid[inv.Name] = inv.Err
	}
	inPlace := func(name string) (bool, string) {
		if upToDate[name] || pr.done[name] {
			return true, ""
		}
		if err, bad := invalid[name]; bad {
			return false, "invalid: " + err.Error()
		}
		if err, failed := pr.failed[name]; failed {
			return false, err.Error()
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

	var errs []error
	for _, r := range []*results{pr, nr} {
		for _, name := range sortedKeys(r.failed) {
			errs = append(errs, r.failed[name])
		}
	}
	if len(errs) == 0 {
		dr := newResults()
		wr.deletePolicies(ctx, deletes, dr)
		if len(deletes) > 0 {
			result.Writes[verbDelete] += len(deletes)
		}
		for _, name := range sortedKeys(dr.failed) {
			errs = append(errs, dr.failed[name])
		}
	} else if len(deletes) > 0 {
		c.log.Info("deletes postponed until the writes before them succeed", "deletes", len(deletes))
	}

	c.o.Metrics.ManagedPolicies.Set(float64(len(desired.Policies)))
	c.o.Metrics.InvalidPolicies.Set(float64(len(desired.Invalid)))
	c.o.Metrics.setNamespaces(states)
	if len(errs) > 0 {
		c.o.Metrics.Errors.WithLabelValues("write").Add(float64(len(errs)))
	}
	if ctx.Err() == nil {
		c.ready.Store(true)
	}
	total := 0
	for _, n := range result.Writes {
		total += n
	}
	if total > 0 || len(errs) > 0 {
		c.log.Info("pass done", "kind", kind, "writes", result.Writes, "errors", len(errs), "duration", time.Since(start).String())
	} else {
		c.log.Debug("pass done, nothing to write", "kind", kind, "duration", time.Since(start).String())
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
	s.policies = typed[unstructured.Unstructured](w.informer.GetStore().List())
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
