package sync

import (
	"context"
	"fmt"
	"log/slog"
	gosync "sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/calico-pni/calico-pni/calico"
)

// FieldManager is the name calico-pni writes under.
const FieldManager = "calico-pni"

// writer performs planned writes, in parallel within one step.
type writer struct {
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	api     calico.API
	dryRun  bool
	workers int
	metrics *Metrics
	log     *slog.Logger
	recent  *recent
}

// results collects the outcome of writes.
type results struct {
	mu     gosync.Mutex
	done   map[string]bool
	failed map[string]error
	// objects holds what the API server returned for policy writes.
	objects map[string]*unstructured.Unstructured
}

func newResults() *results {
	return &results{done: map[string]bool{}, failed: map[string]error{}, objects: map[string]*unstructured.Unstructured{}}
}

func (r *results) record(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed[name] = err
	} else {
		r.done[name] = true
	}
}

func (r *results) keep(name string, obj *unstructured.Unstructured) {
	if obj == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objects[name] = obj
}

// failures returns how many writes failed so far.
func (r *results) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failed)
}

// each runs fn for every item with at most w.workers at a time.
func each[T any](w *writer, items []T, fn func(T)) {
	var g errgroup.Group
	g.SetLimit(max(w.workers, 1))
	for _, item := range items {
		g.Go(func() error {
			fn(item)
			return nil
		})
	}
	_ = g.Wait()
}

// applyPolicies makes one step's policy writes (creates, updates and
// deletes), in parallel, and returns once all are done.
func (w *writer) applyPolicies(ctx context.Context, changes []policyChange, r *results) {
	each(w, changes, func(c policyChange) {
		if c.verb == verbDelete {
			r.record(c.name, w.deletePolicy(ctx, c))
			return
		}
		obj, err := w.writePolicy(ctx, c)
		r.keep(c.name, obj)
		r.record(c.name, err)
	})
}

func (w *writer) resource(u *unstructured.Unstructured) dynamic.ResourceInterface {
	res := w.dyn.Resource(w.api.Resource(u.GetKind()))
	if ns := u.GetNamespace(); ns != "" {
		return res.Namespace(ns)
	}
	return res
}

func (w *writer) writePolicy(ctx context.Context, c policyChange) (*unstructured.Unstructured, error) {
	obj := c.object
	kind := obj.GetKind()
	if w.dryRun {
		w.log.Info("dry run: would write policy", "verb", c.verb, "kind", kind, "name", obj.GetName())
		return nil, nil
	}
	res := w.resource(obj)
	opts := metav1.CreateOptions{FieldManager: FieldManager}
	key := obj.GetNamespace() + "/" + obj.GetName()
	switch c.verb {
	case verbCreate:
		created, err := res.Create(ctx, obj, opts)
		if err == nil {
			w.remember(kind, key, "", created)
			w.count(verbCreate, kind)
			w.log.Info("created policy", "kind", kind, "name", obj.GetName())
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
		}
		// Made since the cache was filled: read it and update it if ours.
	case verbUpdate:
		// The object carries the resourceVersion calico-pni compared
		// against; a conflict means it changed since, so read it again.
		updated, err := res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			w.remember(kind, key, obj.GetResourceVersion(), updated)
			w.count(verbUpdate, kind)
			w.log.Info("updated policy", "kind", kind, "name", obj.GetName())
			return updated, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("updating %s %s: %w", kind, obj.GetName(), err)
		}
	}
	var written *unstructured.Unstructured
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			fresh := obj.DeepCopy()
			fresh.SetResourceVersion("")
			fresh.SetUID("")
			created, err := res.Create(ctx, fresh, opts)
			if err != nil {
				return fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
			}
			w.remember(kind, key, "", created)
			w.count(verbCreate, kind)
			written = created
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
		}
		if cur.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue {
			return fmt.Errorf("a %s named %s exists and is not managed by calico-pni (it lacks the label %s=%s); calico-pni never changes it: rename or delete it, and calico-pni will write its own",
				kind, obj.GetName(), calico.ManagedByLabel, calico.ManagedByValue)
		}
		if matches(cur, c.policy, canonicalOf) {
			// Already as wanted: the cache was behind.
			w.remember(kind, key, obj.GetResourceVersion(), cur)
			written = cur
			return nil
		}
		update := mergeForUpdate(cur, obj)
		updated, err := res.Update(ctx, update, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return fmt.Errorf("updating %s %s: %w", kind, obj.GetName(), err)
		}
		w.remember(kind, key, obj.GetResourceVersion(), updated)
		w.count(verbUpdate, kind)
		w.log.Info("updated policy", "kind", kind, "name", obj.GetName())
		written = updated
		return nil
	})
	return written, err
}

// deletePolicy deletes a managed policy only if it is still the object
// calico-pni saw (same UID).
func (w *writer) deletePolicy(ctx context.Context, c policyChange) error {
	obj := c.object
	if w.dryRun {
		w.log.Info("dry run: would delete policy", "kind", obj.GetKind(), "name", obj.GetName())
		return nil
	}
	uid := obj.GetUID()
	err := w.resource(obj).Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil:
		w.remember(obj.GetKind(), obj.GetNamespace()+"/"+obj.GetName(), obj.GetResourceVersion(), nil)
		w.count(verbDelete, obj.GetKind())
		w.log.Info("deleted policy", "kind", obj.GetKind(), "name", obj.GetName())
		return nil
	case isGone(err):
		// Gone, or replaced by another object since: not the one
		// calico-pni saw.
		return nil
	}
	return fmt.Errorf("deleting %s %s: %w", obj.GetKind(), obj.GetName(), err)
}

// patchNamespaces writes namespace labels and status with merge patches
// that name only calico-pni's keys.
func (w *writer) patchNamespaces(ctx context.Context, changes []namespaceChange, r *results) {
	each(w, changes, func(c namespaceChange) {
		if w.dryRun {
			w.log.Info("dry run: would patch namespace", "namespace", c.name, "patch", string(c.patch))
			r.record(c.name, nil)
			return
		}
		patched, err := w.kube.CoreV1().Namespaces().Patch(ctx, c.name, types.MergePatchType, c.patch, metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			w.recent.namespaceWritten(c.name, c.before, ownView(patched))
			w.count(verbPatch, "Namespace")
			w.log.Debug("patched namespace", "namespace", c.name, "patch", string(c.patch))
		case apierrors.IsNotFound(err):
			err = nil
		default:
			err = fmt.Errorf("patching namespace %s: %w", c.name, err)
		}
		r.record(c.name, err)
	})
}

// remember records a write of a policy until the policy informer has seen
// it. Tiers are listed afresh in every pass and are not remembered.
func (w *writer) remember(kind, key, before string, after *unstructured.Unstructured) {
	if kind == "Tier" {
		return
	}
	w.recent.policyWritten(key, before, after)
}

func (w *writer) count(verb, kind string) {
	w.metrics.Writes.WithLabelValues(verb, kind).Inc()
}

// isGone is true for a delete of an object that no longer exists, or that
// was replaced by another of the same name.
func isGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}
