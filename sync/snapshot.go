package sync

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/rancher"
)

// kubernetesSliceSelector selects the EndpointSlices of default/kubernetes.
const kubernetesSliceSelector = discoveryv1.LabelServiceName + "=kubernetes"

// managedSelector selects the Calico objects calico-pni owns.
const managedSelector = calico.ManagedByLabel + "=" + calico.ManagedByValue

// clusterState is what one pass reads: the snapshot for the generator, the
// namespaces as they are, and the managed policies.
type clusterState struct {
	snap       policies.Snapshot
	namespaces map[string]plan.Namespace
	policies   []*unstructured.Unstructured
	// versions holds the resourceVersion of the nodes, EndpointSlices and
	// Services listCluster read, keyed as cacheVersions keys them, for
	// checking the caches against the server (doubt.go).
	versions map[string]string
}

func (s *clusterState) addNamespaces(list []*corev1.Namespace) {
	s.namespaces = make(map[string]plan.Namespace, len(list))
	s.snap.Namespaces = make([]policies.Namespace, 0, len(list))
	for _, ns := range list {
		s.snap.Namespaces = append(s.snap.Namespaces, policies.NamespaceFrom(ns))
		s.namespaces[ns.Name] = viewOf(ns)
	}
}

func viewOf(ns *corev1.Namespace) plan.Namespace {
	return plan.Namespace{Labels: ns.Labels, Annotations: ns.Annotations, Deleting: ns.DeletionTimestamp != nil, ResourceVersion: ns.ResourceVersion}
}

// ownView keeps of a namespace only what the planner compares: calico-pni's
// labels and status. It is what calico-pni remembers of its own writes.
func ownView(ns *corev1.Namespace) plan.Namespace {
	v := plan.Namespace{Labels: map[string]string{}, Deleting: ns.DeletionTimestamp != nil, ResourceVersion: ns.ResourceVersion}
	for k, val := range ns.Labels {
		if strings.HasPrefix(k, policies.LabelPrefix) {
			v.Labels[k] = val
		}
	}
	if status, ok := ns.Annotations[policies.StatusAnnotation]; ok {
		v.Annotations = map[string]string{policies.StatusAnnotation: status}
	}
	return v
}

func (s *clusterState) addNodes(list []*corev1.Node) {
	s.snap.Nodes = make([]policies.Node, 0, len(list))
	for _, n := range list {
		s.snap.Nodes = append(s.snap.Nodes, policies.NodeFrom(n))
	}
}

func (s *clusterState) addServices(list []*corev1.Service) {
	s.snap.ExternalServices = nil
	for _, svc := range list {
		if ext, ok := policies.ServiceFrom(svc); ok {
			s.snap.ExternalServices = append(s.snap.ExternalServices, ext)
		}
	}
}

func (s *clusterState) addPods(list []*corev1.Pod) {
	s.snap.HostPortPods = nil
	for _, pod := range list {
		if hp, ok := policies.HostPortPodFrom(pod); ok {
			s.snap.HostPortPods = append(s.snap.HostPortPods, hp)
		}
	}
}

// ListSnapshot reads a snapshot straight from the API server, for one-off
// commands (the daemon reads its informers' caches instead).
func ListSnapshot(ctx context.Context, kube kubernetes.Interface) (policies.Snapshot, error) {
	s, err := listCluster(ctx, kube)
	if err != nil {
		return s.snap, err
	}
	pods, err := listPods(ctx, kube)
	s.addPods(pods)
	return s.snap, err
}

// listCluster reads namespaces, nodes, the API endpoints and Services from
// the API server. Namespaces and Services are read page by page and only
// what calico-pni reads is kept, so that a refresh of a large cluster does
// not hold the whole list, managed fields and all, in memory at once.
func listCluster(ctx context.Context, kube kubernetes.Interface) (*clusterState, error) {
	s := &clusterState{versions: map[string]string{}}
	var namespaces []*corev1.Namespace
	err := eachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Namespaces().List(ctx, o)
	}, func(obj runtime.Object) {
		trimmed, _ := trimNamespace(obj)
		namespaces = append(namespaces, trimmed.(*corev1.Namespace))
	})
	if err != nil {
		return s, fmt.Errorf("listing namespaces: %w", err)
	}
	s.addNamespaces(namespaces)
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("listing nodes: %w", err)
	}
	s.addNodes(pointers(nodes.Items))
	for _, n := range nodes.Items {
		s.versions["Node/"+n.Name] = n.ResourceVersion
	}
	slices, err := kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: kubernetesSliceSelector})
	if err != nil {
		return s, fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	s.snap.APIEndpoints = policies.APIEndpointsFrom(pointers(slices.Items))
	for _, e := range slices.Items {
		s.versions["EndpointSlice/"+e.Name] = e.ResourceVersion
	}
	var services []*corev1.Service
	err = eachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) {
		if svc, ok := obj.(*corev1.Service); ok && isExternal(svc) {
			services = append(services, svc)
			s.versions["Service/"+svc.Namespace+"/"+svc.Name] = svc.ResourceVersion
		}
	})
	if err != nil {
		return s, fmt.Errorf("listing services: %w", err)
	}
	s.addServices(services)
	return s, nil
}

// eachListed lists page by page and hands every item to fn.
func eachListed(ctx context.Context, list pager.ListPageFunc, fn func(runtime.Object)) error {
	p := pager.New(list)
	p.PageSize = 500
	return p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		fn(obj)
		return nil
	})
}

// listPods reads the pods with host ports from the API server, page by
// page, for one-off commands.
func listPods(ctx context.Context, kube kubernetes.Interface) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	err := eachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) {
		if pod, ok := obj.(*corev1.Pod); ok && hasHostPorts(pod) {
			out = append(out, pod)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	return out, nil
}

// listManaged lists the policies calico-pni manages in one Calico API:
// GlobalNetworkPolicies, and StagedGlobalNetworkPolicies where served.
func listManaged(ctx context.Context, dyn dynamic.Interface, api calico.API) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, kind := range api.PolicyKinds() {
		list, err := dyn.Resource(api.Resource(kind)).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
		if err != nil {
			return nil, fmt.Errorf("listing managed %ss in %s: %w", kind, api.GroupVersion(), err)
		}
		for i := range list.Items {
			// Items of a List may come without their kind.
			list.Items[i].SetKind(kind)
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
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

// namespaceAnnotations are the only annotations of a namespace calico-pni
// reads. Rancher puts large ones on every namespace (cattle.io/status,
// lifecycle.cattle.io/...); the cache does not keep them.
var namespaceAnnotations = []string{rancher.ProjectIDKey, config.IsolationAnnotation, policies.StatusAnnotation}

func trimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	var annotations map[string]string
	for _, k := range namespaceAnnotations {
		if v, ok := ns.Annotations[k]; ok {
			if annotations == nil {
				annotations = make(map[string]string, len(namespaceAnnotations))
			}
			annotations[k] = v
		}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion,
		Labels: ns.Labels, Annotations: annotations, DeletionTimestamp: ns.DeletionTimestamp,
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

// trimService keeps what decides whether a Service is reachable from
// outside the cluster, and its pods and ports.
func trimService(obj any) (any, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, UID: svc.UID, ResourceVersion: svc.ResourceVersion},
		Spec: corev1.ServiceSpec{
			Type: svc.Spec.Type, Selector: svc.Spec.Selector, Ports: svc.Spec.Ports, ExternalIPs: svc.Spec.ExternalIPs,
		},
	}, nil
}

// trimPod keeps, of a pod with host ports, its labels, phase and host
// ports, and of any other pod only its name: a cluster has many pods and
// few with host ports.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion}}
	if !hasHostPorts(pod) {
		return out, nil
	}
	out.Labels = pod.Labels
	out.Status.Phase = pod.Status.Phase
	for _, c := range pod.Spec.Containers {
		var ports []corev1.ContainerPort
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				ports = append(ports, p)
			}
		}
		if len(ports) > 0 {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Ports: ports})
		}
	}
	return out, nil
}

func hasHostPorts(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				return true
			}
		}
	}
	return false
}

func isExternal(svc *corev1.Service) bool {
	_, ok := policies.ServiceFrom(svc)
	return ok
}

func trimManaged(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}

// trimManagedFields drops the managed fields of a typed object.
func trimManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}
