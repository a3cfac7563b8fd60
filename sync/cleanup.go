package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// CleanupResult counts what Cleanup removed.
type CleanupResult struct {
	Namespaces int
	Policies   int
	Tiers      int
}

// Cleanup removes everything calico-pni wrote, in the order that never
// denies more than before: first the calico-pni labels and status of every
// namespace (removing the isolated label switches isolation off at once),
// then the baseline policies, then the allow policies, in every Calico API
// the cluster serves. It deletes only objects that carry calico-pni's
// managed-by label.
func Cleanup(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, disc discovery.DiscoveryInterface, log *slog.Logger) (CleanupResult, error) {
	var res CleanupResult
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, fmt.Errorf("listing namespaces: %w", err)
	}
	var errs []error
	for _, ns := range list.Items {
		labels := map[string]any{}
		for k := range ownLabels(ns.Labels) {
			labels[k] = nil
		}
		meta := map[string]any{}
		if len(labels) > 0 {
			meta["labels"] = labels
		}
		if _, ok := ns.Annotations[policies.StatusAnnotation]; ok {
			meta["annotations"] = map[string]any{policies.StatusAnnotation: nil}
		}
		if len(meta) == 0 {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": meta})
		if _, err := kube.CoreV1().Namespaces().Patch(ctx, ns.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns.Name, err))
			continue
		}
		res.Namespaces++
	}
	if len(errs) > 0 {
		// Policies stay until every namespace is released: deleting them
		// first could leave a namespace isolated without its allows.
		return res, errors.Join(errs...)
	}

	for _, group := range []string{calico.GroupV3, calico.GroupV1} {
		api := calico.API{Group: group}
		served, err := servesPolicies(disc, api.GroupVersion().String())
		if err != nil {
			log.Warn("skipping a Calico API that does not answer", "api", api.GroupVersion().String(), "error", err)
			continue
		}
		if !served.policies {
			continue
		}
		api.Staged = served.staged
		managed, err := listManaged(ctx, dyn, api)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		failed := false
		for _, d := range removalOrder(api, managed) {
			if err := deleteManaged(ctx, dyn, api, d.object); err != nil {
				errs = append(errs, err)
				failed = true
				continue
			}
			res.Policies++
			log.Info("deleted policy", "api", api.GroupVersion().String(), "name", d.object.GetName(), "class", d.class)
		}
		if !served.tiers || failed {
			continue
		}
		// calico-pni's tier goes last, once no policy of its is left in it.
		list, err := listManagedTiers(ctx, dyn, api)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, u := range list {
			if err := deleteManaged(ctx, dyn, api, u); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Tiers++
			log.Info("deleted tier", "api", api.GroupVersion().String(), "name", u.GetName())
		}
	}
	return res, errors.Join(errs...)
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

// removalOrder lists managed policies in the order cleanup deletes them:
// the baseline first (with the namespaces released it selects nothing, but
// should a namespace keep its label it must lose the deny before the
// allows), then everything else.
func removalOrder(api calico.API, managed []*unstructured.Unstructured) []policyChange {
	var baseline, rest []policyChange
	for _, u := range managed {
		ch := policyChange{verb: verbDelete, name: api.PolicyName(u.GetName()), class: classOf(u), object: u}
		if ch.class == calico.ClassBaseline {
			baseline = append(baseline, ch)
		} else {
			rest = append(rest, ch)
		}
	}
	sortChanges(baseline)
	sortChanges(rest)
	return append(baseline, rest...)
}
