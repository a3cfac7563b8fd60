package cluster

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/pager"

	"github.com/calico-pni/calico-pni/calico"
)

// The Kubernetes kinds calico-pni's policy evaluator reads.
var evaluatedKubernetes = []schema.GroupVersionResource{
	{Version: "v1", Resource: "namespaces"},
	{Version: "v1", Resource: "nodes"},
	{Version: "v1", Resource: "pods"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
}

// The Calico kinds it reads, from whichever Calico API is served. Kinds a
// cluster does not serve (tiers and staged policies before Calico 3.29
// and 3.30) are left out.
var evaluatedCalico = []string{
	"globalnetworkpolicies", "networkpolicies", "tiers",
	"stagedglobalnetworkpolicies", "stagednetworkpolicies", "stagedkubernetesnetworkpolicies",
	"globalnetworksets", "networksets", "hostendpoints", "clusterinformations", "felixconfigurations",
}

// Kubernetes admin network policies: their presence is reported, since
// the evaluator does not model them.
var adminPolicyGroupVersions = []string{"policy.networking.k8s.io/v1alpha1", "policy.networking.k8s.io/v1alpha2"}

// ListObjects lists from the API server what calico-pni's policy
// evaluator reads, the same objects as `kubectl get
// namespaces,pods,nodes,services,endpointslices,serviceaccounts,networkpolicies,<Calico policies, tiers, staged policies, network sets, host endpoints> -A -o yaml`
// would print, and hands each to fn page by page. Calico's objects come
// from the API DetectAPI picks (projectcalico.org/v3 when served, which
// also lists Kubernetes NetworkPolicies as knp.default.* Calico
// NetworkPolicies; else crd.projectcalico.org/v1). It returns that API.
func ListObjects(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, fn func(where string, obj map[string]any) error) (calico.API, error) {
	api, err := DetectAPI(ctx, disc, dyn, "")
	if err != nil {
		return api, err
	}
	resources := append([]schema.GroupVersionResource(nil), evaluatedKubernetes...)
	served, err := disc.ServerResourcesForGroupVersion(api.GroupVersion().String())
	if err != nil {
		return api, fmt.Errorf("discovering %s: %w", api.GroupVersion(), err)
	}
	for _, want := range evaluatedCalico {
		for _, r := range served.APIResources {
			if r.Name == want {
				resources = append(resources, api.GroupVersion().WithResource(want))
			}
		}
	}
	for _, gv := range adminPolicyGroupVersions {
		list, err := disc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return api, fmt.Errorf("discovering %s: %w", gv, err)
		}
		parsed, _ := schema.ParseGroupVersion(gv)
		for _, r := range list.APIResources {
			resources = append(resources, parsed.WithResource(r.Name))
		}
	}
	for _, gvr := range resources {
		if err := listAll(ctx, dyn, gvr, fn); err != nil {
			return api, err
		}
	}
	return api, nil
}

// listAll lists one resource in every namespace, page by page, without
// managed fields.
func listAll(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, fn func(string, map[string]any) error) error {
	where := "the cluster (" + gvr.GroupResource().String() + ")"
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return dyn.Resource(gvr).List(ctx, o)
	})
	p.PageSize = 500
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("unexpected %T", obj)
		}
		u.SetManagedFields(nil)
		return fn(where, u.Object)
	})
	if err != nil {
		return fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
	}
	return nil
}
