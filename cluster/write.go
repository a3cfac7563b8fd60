package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/metrics"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"
)

// FieldManager is the name calico-pni writes under.
const FieldManager = "calico-pni"

// Writer makes planned writes, in parallel within one step.
type Writer struct {
	Kube kubernetes.Interface
	Dyn  dynamic.Interface
	// API is the Calico API the policies are written through.
	API calico.API
	// DryRun logs the writes and makes none.
	DryRun bool
	// Workers is how many writes run at once.
	Workers int
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Memory, when set, is told of every write the API server accepted.
	Memory Memory
}

// Memory is what remembers calico-pni's own writes until its caches show
// them (the controller's).
type Memory interface {
	NamespaceWritten(name, before string, after plan.Namespace)
	PolicyWritten(key, before string, after *unstructured.Unstructured)
}

// Results collects the outcome of writes, by name.
type Results struct {
	mu     sync.Mutex
	Done   map[string]bool
	Failed map[string]error
	// objects holds what the API server returned for policy writes.
	objects map[string]*unstructured.Unstructured
}

// NewResults returns empty results.
func NewResults() *Results {
	return &Results{Done: map[string]bool{}, Failed: map[string]error{}, objects: map[string]*unstructured.Unstructured{}}
}

func (r *Results) record(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.Failed[name] = err
	} else {
		r.Done[name] = true
	}
}

// object returns what the API server returned for the last write of a
// policy (nil if none).
func (r *Results) Object(name string) *unstructured.Unstructured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.objects[name]
}

func (r *Results) keep(name string, obj *unstructured.Unstructured) {
	if obj == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objects[name] = obj
}

// Failures returns how many writes failed so far.
func (r *Results) Failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Failed)
}

// each runs fn for every item with at most w.workers at a time.
func each[T any](w *Writer, items []T, fn func(T)) {
	var g errgroup.Group
	g.SetLimit(max(w.Workers, 1))
	for _, item := range items {
		g.Go(func() error {
			fn(item)
			return nil
		})
	}
	_ = g.Wait()
}

// ApplyPolicies makes one step's policy writes (creates, updates and
// deletes), in parallel, and returns once all are done. A write marked
// OnWritten is made on the object an earlier write of the plan returned.
func (w *Writer) ApplyPolicies(ctx context.Context, changes []plan.PolicyWrite, r *Results) {
	each(w, changes, func(c plan.PolicyWrite) {
		if c.OnWritten {
			o := r.Object(c.Name)
			switch {
			case o == nil && c.Verb == plan.Delete:
				// Never written (a dry run, or the write failed): nothing
				// to remove.
				return
			case o == nil:
			case c.Verb == plan.Delete:
				c.Object = o
			default:
				c.Object = plan.MergeForUpdate(o, c.Object)
			}
		}
		if c.Verb == plan.Delete {
			r.record(c.Name, w.deletePolicy(ctx, c))
			return
		}
		obj, err := w.writePolicy(ctx, c)
		r.keep(c.Name, obj)
		r.record(c.Name, err)
	})
}

func (w *Writer) resource(u *unstructured.Unstructured) dynamic.ResourceInterface {
	api := w.API
	if group := u.GroupVersionKind().Group; group != "" && group != api.Group {
		// Cleanup removes calico-pni's objects from every Calico API the
		// cluster serves.
		api = calico.API{Group: group, Version: api.Version}
	}
	res := w.Dyn.Resource(api.Resource(u.GetKind()))
	if ns := u.GetNamespace(); ns != "" {
		return res.Namespace(ns)
	}
	return res
}

func (w *Writer) writePolicy(ctx context.Context, c plan.PolicyWrite) (*unstructured.Unstructured, error) {
	obj := c.Object
	kind := obj.GetKind()
	if w.DryRun {
		w.Log.Info("dry run: would write policy", "verb", c.Verb, "kind", kind, "name", obj.GetName())
		return nil, nil
	}
	res := w.resource(obj)
	opts := metav1.CreateOptions{FieldManager: FieldManager}
	key := obj.GetNamespace() + "/" + obj.GetName()
	switch c.Verb {
	case plan.Create:
		created, err := res.Create(ctx, obj, opts)
		if err == nil {
			w.remember(kind, key, "", created)
			w.count(plan.Create, kind)
			w.Log.Info("created policy", "kind", kind, "name", obj.GetName())
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
		}
		// Made since the cache was filled: read it and update it if ours.
	case plan.Update:
		// The object carries the resourceVersion calico-pni compared
		// against; a conflict means it changed since, so read it again.
		updated, err := res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			w.remember(kind, key, obj.GetResourceVersion(), updated)
			w.count(plan.Update, kind)
			w.Log.Info("updated policy", "kind", kind, "name", obj.GetName())
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
			w.count(plan.Create, kind)
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
		if c.Verb == plan.Update && plan.Matches(cur, c.Policy, plan.CanonicalOf) {
			// Already as wanted: the cache was behind.
			w.remember(kind, key, obj.GetResourceVersion(), cur)
			written = cur
			return nil
		}
		update := plan.MergeForUpdate(cur, obj)
		updated, err := res.Update(ctx, update, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return fmt.Errorf("updating %s %s: %w", kind, obj.GetName(), err)
		}
		w.remember(kind, key, obj.GetResourceVersion(), updated)
		w.count(plan.Update, kind)
		w.Log.Info("updated policy", "kind", kind, "name", obj.GetName())
		written = updated
		return nil
	})
	return written, err
}

// deletePolicy deletes a managed policy only if it is still the object
// calico-pni saw (same UID).
func (w *Writer) deletePolicy(ctx context.Context, c plan.PolicyWrite) error {
	obj := c.Object
	if w.DryRun {
		w.Log.Info("dry run: would delete policy", "kind", obj.GetKind(), "name", obj.GetName())
		return nil
	}
	uid := obj.GetUID()
	err := w.resource(obj).Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil:
		w.remember(obj.GetKind(), obj.GetNamespace()+"/"+obj.GetName(), obj.GetResourceVersion(), nil)
		w.count(plan.Delete, obj.GetKind())
		w.Log.Info("deleted policy", "kind", obj.GetKind(), "name", obj.GetName())
		return nil
	case IsGone(err):
		// Gone, or replaced by another object since: not the one
		// calico-pni saw.
		return nil
	}
	return fmt.Errorf("deleting %s %s: %w", obj.GetKind(), obj.GetName(), err)
}

// PatchNamespaces writes namespace labels and status with merge patches
// that name only calico-pni's keys.
func (w *Writer) PatchNamespaces(ctx context.Context, changes []plan.NamespaceWrite, r *Results) {
	each(w, changes, func(c plan.NamespaceWrite) {
		patch := namespacePatch(c)
		if w.DryRun {
			w.Log.Info("dry run: would patch namespace", "namespace", c.Name, "patch", string(patch))
			r.record(c.Name, nil)
			return
		}
		patched, err := w.Kube.CoreV1().Namespaces().Patch(ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			if w.Memory != nil {
				w.Memory.NamespaceWritten(c.Name, c.Before, OwnView(patched))
			}
			w.count(plan.Patch, "Namespace")
			w.Log.Debug("patched namespace", "namespace", c.Name, "patch", string(patch))
		case apierrors.IsNotFound(err):
			err = nil
		default:
			err = fmt.Errorf("patching namespace %s: %w", c.Name, err)
		}
		r.record(c.Name, err)
	})
}

// namespacePatch is the JSON merge patch of one namespace write.
func namespacePatch(c plan.NamespaceWrite) []byte {
	meta := map[string]any{}
	if len(c.Set)+len(c.Remove) > 0 {
		labels := make(map[string]any, len(c.Set)+len(c.Remove))
		for k, v := range c.Set {
			labels[k] = v
		}
		for _, k := range c.Remove {
			labels[k] = nil
		}
		meta["labels"] = labels
	}
	switch {
	case c.Status != "":
		meta["annotations"] = map[string]any{policies.StatusAnnotation: c.Status}
	case c.RemoveStatus:
		meta["annotations"] = map[string]any{policies.StatusAnnotation: nil}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		panic("encoding a namespace patch: " + err.Error())
	}
	return patch
}

// remember records a write of a policy until the policy informer has seen
// it. Tiers are listed afresh in every pass and are not remembered.
func (w *Writer) remember(kind, key, before string, after *unstructured.Unstructured) {
	if kind == "Tier" {
		return
	}
	if w.Memory != nil {
		w.Memory.PolicyWritten(key, before, after)
	}
}

func (w *Writer) count(verb, kind string) {
	w.Metrics.Writes.WithLabelValues(verb, kind).Inc()
}

// IsGone is true for a delete of an object that no longer exists, or that
// was replaced by another of the same name.
func IsGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}
