package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// captured are the resources Capture lists, with the version each group
// is read at.
func captured() []schema.GroupVersionResource {
	out := []schema.GroupVersionResource{
		{Group: groupNetworking, Version: "v1", Resource: "networkpolicies"},
		{Group: groupDiscovery, Version: "v1", Resource: "endpointslices"},
	}
	for _, gv := range []schema.GroupVersion{{Group: groupCalicoV1, Version: "v1"}, {Group: groupCalicoV3, Version: "v3"}} {
		for _, r := range calicoResources {
			out = append(out, gv.WithResource(r))
		}
	}
	return out
}

// Capture lists, from a live API server, what decides connections.
// Resources the server does not serve (a Calico API group, tiers before
// Calico 3.29) are left out. HostEndpoints, which the evaluator does not
// model, are refused.
func Capture(ctx context.Context, dyn dynamic.Interface) (*State, error) {
	s := NewState()
	nss, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	for i := range nss.Items {
		s.Namespaces[nss.Items[i].GetName()] = nss.Items[i].GetLabels()
	}
	for _, gvr := range captured() {
		items, err := list(ctx, dyn, gvr)
		if err != nil {
			return nil, err
		}
		for _, u := range items {
			s.Objects[Key{Group: gvr.Group, Resource: gvr.Resource, Namespace: u.GetNamespace(), Name: u.GetName()}] = u
		}
	}
	for _, gv := range []schema.GroupVersion{{Group: groupCalicoV1, Version: "v1"}, {Group: groupCalicoV3, Version: "v3"}} {
		hep, err := list(ctx, dyn, gv.WithResource("hostendpoints"))
		if err != nil {
			return nil, err
		}
		if len(hep) > 0 {
			return nil, fmt.Errorf("the cluster has %d HostEndpoints (%s), which the reference evaluator does not model", len(hep), gv)
		}
	}
	return s, nil
}

func list(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource) ([]*unstructured.Unstructured, error) {
	l, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr, err)
	}
	out := make([]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		u := l.Items[i]
		// A list's items carry no apiVersion and kind of their own in
		// some clients; the state reads them.
		if u.GetKind() == "" {
			u.SetAPIVersion(gvr.GroupVersion().String())
			u.SetKind(strings.TrimSuffix(l.GetKind(), "List"))
		}
		out[i] = &u
	}
	return out, nil
}

// Diff lists how two states differ: namespaces and their labels, and
// objects by key, version, labels and content.
func Diff(a, b *State) []string {
	var out []string
	for _, ns := range slices.Sorted(maps.Keys(a.Namespaces)) {
		lb, ok := b.Namespaces[ns]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("namespace %s only in the first", ns))
		case !maps.Equal(a.Namespaces[ns], lb):
			out = append(out, fmt.Sprintf("namespace %s: labels %v, then %v", ns, a.Namespaces[ns], lb))
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(b.Namespaces)) {
		if _, ok := a.Namespaces[ns]; !ok {
			out = append(out, fmt.Sprintf("namespace %s only in the second", ns))
		}
	}
	keys := slices.SortedFunc(maps.Keys(a.Objects), compareKeys)
	for _, k := range keys {
		ob, ok := b.Objects[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s only in the first", k))
			continue
		}
		if d := objectDiff(a.Objects[k], ob); d != "" {
			out = append(out, fmt.Sprintf("%s: %s", k, d))
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(b.Objects), compareKeys) {
		if _, ok := a.Objects[k]; !ok {
			out = append(out, fmt.Sprintf("%s only in the second", k))
		}
	}
	return out
}

func compareKeys(a, b Key) int { return cmp.Compare(a.String(), b.String()) }

// objectDiff compares what decides connections: version, labels and
// everything outside metadata.
func objectDiff(a, b *unstructured.Unstructured) string {
	if a.GetResourceVersion() != b.GetResourceVersion() {
		return fmt.Sprintf("resourceVersion %s, then %s", a.GetResourceVersion(), b.GetResourceVersion())
	}
	if !maps.Equal(a.GetLabels(), b.GetLabels()) {
		return fmt.Sprintf("labels %v, then %v", a.GetLabels(), b.GetLabels())
	}
	ca, cb := content(a), content(b)
	if ca != cb {
		return fmt.Sprintf("content %s, then %s", ca, cb)
	}
	return ""
}

func content(u *unstructured.Unstructured) string {
	rest := map[string]any{}
	for k, v := range u.Object {
		if k != "metadata" && k != "apiVersion" && k != "kind" {
			rest[k] = v
		}
	}
	data, _ := json.Marshal(rest)
	return string(data)
}
