package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/metrics"
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
	namespaces, err := ListNamespaces(ctx, kube)
	if err != nil {
		return res, err
	}
	managed, api, err := listWritten(ctx, dyn, disc, log)
	if err != nil {
		// Nothing is removed from a cluster calico-pni cannot see whole.
		return res, err
	}
	var errs []error
	p := plan.Cleanup(namespaces, managed)
	if o.Workers < 1 {
		o.Workers = 1
	}
	clock := &SettleClock{}
	// The daemon may have written a moment before it was stopped.
	clock.Wrote(plan.Widens|plan.Relabels|plan.Narrows, time.Now())
	ex := &Executor{
		Writer: &Writer{Kube: kube, Dyn: dyn, API: api, Workers: o.Workers, Metrics: metrics.New(nil), Log: log},
		Settle: o.Settle, Clock: clock,
	}
	out := ex.Run(ctx, p, nil)
	for _, step := range p.Steps {
		for _, w := range step.Policies {
			if !out.Policies.Done[w.Name] {
				continue
			}
			if w.Object.GetKind() == "Tier" {
				res.Tiers++
			} else {
				res.Policies++
			}
		}
	}
	res.Namespaces = countNamespaces(p, out.Namespaces)
	for _, r := range []*Results{out.Policies, out.Namespaces} {
		for _, name := range slices.Sorted(maps.Keys(r.Failed)) {
			errs = append(errs, r.Failed[name])
		}
	}
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("cleanup stopped before it finished: %w", err))
	}
	if res.Namespaces+res.Policies+res.Tiers > 0 || len(errs) > 0 {
		log.Info("cleanup", "namespaces", res.Namespaces, "policies", res.Policies, "tiers", res.Tiers, "errors", len(errs), "settled", out.Settled.String())
	}
	return res, errors.Join(errs...)
}

// listWritten lists calico-pni's policies and tiers in every Calico API
// the cluster serves, and returns the API of the last one.
func listWritten(ctx context.Context, dyn dynamic.Interface, disc discovery.DiscoveryInterface, log *slog.Logger) ([]*unstructured.Unstructured, calico.API, error) {
	var managed []*unstructured.Unstructured
	var errs []error
	var api calico.API
	for _, group := range []string{calico.GroupV3, calico.GroupV1} {
		a := calico.API{Group: group}
		served, err := ServesPolicies(disc, a.GroupVersion().String())
		if err != nil {
			log.Warn("skipping a Calico API that does not answer", "api", a.GroupVersion().String(), "error", err)
			continue
		}
		if !served.Policies {
			continue
		}
		a.Staged = served.Staged
		api = a
		list, err := ListManaged(ctx, dyn, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		managed = append(managed, list...)
		if served.Tiers {
			tiers, err := ListManagedTiers(ctx, dyn, a)
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
	return managed, api, errors.Join(errs...)
}

// countNamespaces counts the namespaces a cleanup wrote to.
func countNamespaces(p plan.Plan, nr *Results) int {
	seen := map[string]bool{}
	for _, step := range p.Steps {
		for _, w := range step.Namespaces {
			if nr.Done[w.Name] {
				seen[w.Name] = true
			}
		}
	}
	return len(seen)
}

// ListNamespaces lists every namespace, page by page, keeping what a plan
// reads.
func ListNamespaces(ctx context.Context, kube kubernetes.Interface) (map[string]plan.Namespace, error) {
	out := map[string]plan.Namespace{}
	err := EachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Namespaces().List(ctx, o)
	}, func(obj runtime.Object) {
		trimmed, _ := TrimNamespace(obj)
		ns := trimmed.(*corev1.Namespace)
		out[ns.Name] = ViewOf(ns)
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	return out, nil
}

// ListManagedTiers lists the Tiers calico-pni manages in one Calico API.
func ListManagedTiers(ctx context.Context, dyn dynamic.Interface, api calico.API) ([]*unstructured.Unstructured, error) {
	list, err := dyn.Resource(api.TierResource()).List(ctx, metav1.ListOptions{LabelSelector: ManagedSelector})
	if err != nil {
		return nil, fmt.Errorf("listing managed Tiers in %s: %w", api.GroupVersion(), err)
	}
	return Pointers(list.Items), nil
}

func deleteManaged(ctx context.Context, dyn dynamic.Interface, api calico.API, u *unstructured.Unstructured) error {
	res := dyn.Resource(api.Resource(u.GetKind()))
	var ri dynamic.ResourceInterface = res
	if ns := u.GetNamespace(); ns != "" {
		ri = res.Namespace(ns)
	}
	uid := u.GetUID()
	err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !IsGone(err) {
		return fmt.Errorf("deleting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
