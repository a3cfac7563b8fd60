package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/plan"
)

// CleanupResult counts what Cleanup removed.
type CleanupResult struct {
	Namespaces int
	Policies   int
	Tiers      int
}

// CleanupOptions configure Cleanup.
type CleanupOptions struct {
	// Workers is how many writes run at once within a step.
	Workers int
	// Settle is how long the policy deletes wait after the last namespace
	// left isolation, for Calico's dataplane to apply it (DefaultSettle).
	Settle time.Duration
	Log    *slog.Logger
}

// Cleanup removes everything calico-pni wrote, in the order of
// plan.Cleanup: every namespace leaves isolation first (in parallel),
// then the project labels and statuses go, then, once the dataplane has
// had the settle time, the baseline, the other policies and the tiers, in
// every Calico API the cluster serves. It deletes only objects that carry
// calico-pni's managed-by label. Run again after it stopped half way, it
// finishes the job.
func Cleanup(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, disc discovery.DiscoveryInterface, o CleanupOptions) (CleanupResult, error) {
	var res CleanupResult
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	namespaces, err := listNamespaces(ctx, kube)
	if err != nil {
		return res, err
	}
	var managed []*unstructured.Unstructured
	var errs []error
	var api calico.API
	for _, group := range []string{calico.GroupV3, calico.GroupV1} {
		a := calico.API{Group: group}
		served, err := servesPolicies(disc, a.GroupVersion().String())
		if err != nil {
			log.Warn("skipping a Calico API that does not answer", "api", a.GroupVersion().String(), "error", err)
			continue
		}
		if !served.policies {
			continue
		}
		a.Staged = served.staged
		api = a
		list, err := listManaged(ctx, dyn, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		managed = append(managed, list...)
		if served.tiers {
			tiers, err := listManagedTiers(ctx, dyn, a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, t := range tiers {
				t.SetKind("Tier")
				managed = append(managed, t)
			}
		}
	}
	if len(errs) > 0 {
		// Nothing is removed from a cluster calico-pni cannot see whole.
		return res, errors.Join(errs...)
	}
	p := plan.Cleanup(namespaces, managed)
	c := &Controller{o: Options{Settle: o.Settle, Metrics: NewMetrics(nil), Workers: o.Workers}, log: log, recent: newRecent()}
	if c.o.Workers < 1 {
		c.o.Workers = 1
	}
	// The daemon may have written a moment before it was stopped.
	c.settle.wrote(plan.Widens|plan.Relabels|plan.Narrows, time.Now())
	c.ready.Store(true)
	wr := &writer{kube: kube, dyn: dyn, api: api, workers: c.o.Workers, metrics: c.o.Metrics, log: log, recent: c.recent}
	result := PassResult{Writes: map[string]int{}}
	pr, nr := c.execute(ctx, wr, p, nil, &result)
	for _, step := range p.Steps {
		for _, w := range step.Policies {
			if !pr.done[w.Name] {
				continue
			}
			if w.Object.GetKind() == "Tier" {
				res.Tiers++
			} else {
				res.Policies++
			}
		}
	}
	res.Namespaces = countNamespaces(p, nr)
	for _, name := range sortedKeys(pr.failed) {
		errs = append(errs, pr.failed[name])
	}
	for _, name := range sortedKeys(nr.failed) {
		errs = append(errs, nr.failed[name])
	}
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("cleanup stopped before it finished: %w", err))
	}
	if res.Namespaces+res.Policies+res.Tiers > 0 || len(errs) > 0 {
		log.Info("cleanup", "namespaces", res.Namespaces, "policies", res.Policies, "tiers", res.Tiers, "errors", len(errs), "settled", result.Settled.String())
	}
	return res, errors.Join(errs...)
}

// countNamespaces counts the namespaces a cleanup wrote to.
func countNamespaces(p plan.Plan, nr *results) int {
	seen := map[string]bool{}
	for _, step := range p.Steps {
		for _, w := range step.Namespaces {
			if nr.done[w.Name] {
				seen[w.Name] = true
			}
		}
	}
	return len(seen)
}

// listNamespaces lists every namespace, page by page, keeping what a plan
// reads.
func listNamespaces(ctx context.Context, kube kubernetes.Interface) (map[string]plan.Namespace, error) {
	out := map[string]plan.Namespace{}
	err := eachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Namespaces().List(ctx, o)
	}, func(obj runtime.Object) {
		trimmed, _ := trimNamespace(obj)
		ns := trimmed.(*corev1.Namespace)
		out[ns.Name] = viewOf(ns)
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	return out, nil
}

// listManagedTiers lists the Tiers calico-pni manages in one Calico API.
func listManagedTiers(ctx context.Context, dyn dynamic.Interface, api calico.API) ([]*unstructured.Unstructured, error) {
	list, err := dyn.Resource(api.TierResource()).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return nil, fmt.Errorf("listing managed Tiers in %s: %w", api.GroupVersion(), err)
	}
	return pointers(list.Items), nil
}

func deleteManaged(ctx context.Context, dyn dynamic.Interface, api calico.API, u *unstructured.Unstructured) error {
	res := dyn.Resource(api.Resource(u.GetKind()))
	var ri dynamic.ResourceInterface = res
	if ns := u.GetNamespace(); ns != "" {
		ri = res.Namespace(ns)
	}
	uid := u.GetUID()
	err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !isGone(err) {
		return fmt.Errorf("deleting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
