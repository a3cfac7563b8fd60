package sync

import (
	"context"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/policies"
)

// kubernetesSliceSelector selects the EndpointSlices of default/kubernetes.
const kubernetesSliceSelector = discoveryv1.LabelServiceName + "=kubernetes"

// ListSnapshot reads a snapshot straight from the API server, for one-off
// commands (the daemon reads its informers' caches instead).
func ListSnapshot(ctx context.Context, kube kubernetes.Interface) (policies.Snapshot, error) {
	var snap policies.Snapshot
	nsList, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return snap, fmt.Errorf("listing namespaces: %w", err)
	}
	for i := range nsList.Items {
		snap.Namespaces = append(snap.Namespaces, policies.NamespaceFrom(&nsList.Items[i]))
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return snap, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		snap.Nodes = append(snap.Nodes, policies.NodeFrom(&nodes.Items[i]))
	}
	slices, err := kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: kubernetesSliceSelector})
	if err != nil {
		return snap, fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	var ptrs []*discoveryv1.EndpointSlice
	for i := range slices.Items {
		ptrs = append(ptrs, &slices.Items[i])
	}
	snap.APIEndpoints = policies.APIEndpointsFrom(ptrs)
	return snap, nil
}
