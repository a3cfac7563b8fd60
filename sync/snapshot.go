package sync

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// kubernetesSliceSelector selects the EndpointSlices of default/kubernetes.
const kubernetesSliceSelector = discoveryv1.LabelServiceName + "=kubernetes"

// managedSelector selects the Calico objects calico-pni owns.
const managedSelector = calico.ManagedByLabel + "=" + calico.ManagedByValue

// clusterState is what one pass reads: the snapshot for the generator, the
// namespaces as they are, and the managed policies.
type clusterState struct {
	snap       policies.Snapshot
	namespaces map[string]namespaceView
	policies   []*unstructured.Unstructured
}

func (s *clusterState) addNamespaces(list []*corev1.Namespace) {
	s.namespaces = make(map[string]namespaceView, len(list))
	s.snap.Namespaces = make([]policies.Namespace, 0, len(list))
	for _, ns := range list {
		s.snap.Namespaces = append(s.snap.Namespaces, policies.NamespaceFrom(ns))
		s.namespaces[ns.Name] = namespaceView{labels: ns.Labels, annotations: ns.Annotations, deleting: ns.DeletionTimestamp != nil}
	}
}

func (s *clusterState) addNodes(list []*corev1.Node) {
	s.snap.Nodes = make([]policies.Node, 0, len(list))
	for _, n := range list {
		s.snap.Nodes = append(s.snap.Nodes, policies.NodeFrom(n))
	}
}

// ListSnapshot reads a snapshot straight from the API server, for one-off
// commands (the daemon reads its informers' caches instead).
func ListSnapshot(ctx context.Context, kube kubernetes.Interface) (policies.Snapshot, error) {
	s, err := listCluster(ctx, kube)
	return s.snap, err
}

// listCluster reads namespaces, nodes and the API endpoints from the API
// server.
func listCluster(ctx context.Context, kube kubernetes.Interface) (*clusterState, error) {
	s := &clusterState{}
	nsList, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("listing namespaces: %w", err)
	}
	s.addNamespaces(pointers(nsList.Items))
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("listing nodes: %w", err)
	}
	s.addNodes(pointers(nodes.Items))
	slices, err := kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: kubernetesSliceSelector})
	if err != nil {
		return s, fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	s.snap.APIEndpoints = policies.APIEndpointsFrom(pointers(slices.Items))
	return s, nil
}

// listManaged lists the policies calico-pni manages in one Calico API.
// calico-pni writes GlobalNetworkPolicies only.
func listManaged(ctx context.Context, dyn dynamic.Interface, api calico.API) ([]*unstructured.Unstructured, error) {
	list, err := dyn.Resource(api.Resource("GlobalNetworkPolicy")).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return nil, fmt.Errorf("listing managed GlobalNetworkPolicies in %s: %w", api.GroupVersion(), err)
	}
	return pointers(list.Items), nil
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// The informer transforms keep only what calico-pni reads, so that the
// caches stay small with tens of thousands of objects.

func trimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion,
		Labels: ns.Labels, Annotations: ns.Annotations, DeletionTimestamp: ns.DeletionTimestamp,
	}}, nil
}

func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
	}}
	// Calico publishes node addresses in projectcalico.org/ annotations;
	// other annotations can be large and are not read.
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, "projectcalico.org/") {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	out.Status.Addresses = n.Status.Addresses
	return out, nil
}

func trimManaged(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}
