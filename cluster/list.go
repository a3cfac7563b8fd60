package cluster

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
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

// KubernetesSliceSelector selects the EndpointSlices of default/kubernetes.
const KubernetesSliceSelector = discoveryv1.LabelServiceName + "=kubernetes"

// ManagedSelector selects the Calico objects calico-pni owns.
const ManagedSelector = calico.ManagedByLabel + "=" + calico.ManagedByValue

// State is what one pass reads: the snapshot for the generator, the
// namespaces as they are, and the managed policies.
type State struct {
	Snap       policies.Snapshot
	Namespaces map[string]plan.Namespace
	Policies   []*unstructured.Unstructured
	// Versions holds the resourceVersion of the nodes, EndpointSlices and
	// Services ListCluster read, keyed "Kind/namespace/name" (namespace
	// left out for cluster objects), for checking a controller's caches
	// against the server.
	Versions map[string]string
}

// AddNamespaces puts listed objects into the state.
func (s *State) AddNamespaces(list []*corev1.Namespace) {
	s.Namespaces = make(map[string]plan.Namespace, len(list))
	s.Snap.Namespaces = make([]policies.Namespace, 0, len(list))
	for _, ns := range list {
		s.Snap.Namespaces = append(s.Snap.Namespaces, policies.NamespaceFrom(ns))
		s.Namespaces[ns.Name] = ViewOf(ns)
	}
}

func ViewOf(ns *corev1.Namespace) plan.Namespace {
	return plan.Namespace{Labels: ns.Labels, Annotations: ns.Annotations, Deleting: ns.DeletionTimestamp != nil, ResourceVersion: ns.ResourceVersion}
}

// OwnView keeps of a namespace only what the planner compares: calico-pni's
// labels and status. It is what calico-pni remembers of its own writes.
func OwnView(ns *corev1.Namespace) plan.Namespace {
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

// AddNodes puts listed objects into the state.
func (s *State) AddNodes(list []*corev1.Node) {
	s.Snap.Nodes = make([]policies.Node, 0, len(list))
	for _, n := range list {
		s.Snap.Nodes = append(s.Snap.Nodes, policies.NodeFrom(n))
	}
}

// AddServices puts listed objects into the state.
func (s *State) AddServices(list []*corev1.Service) {
	s.Snap.ExternalServices = nil
	for _, svc := range list {
		if ext, ok := policies.ServiceFrom(svc); ok {
			s.Snap.ExternalServices = append(s.Snap.ExternalServices, ext)
		}
	}
}

// AddPods puts listed objects into the state.
func (s *State) AddPods(list []*corev1.Pod) {
	s.Snap.HostPortPods = nil
	for _, pod := range list {
		if hp, ok := policies.HostPortPodFrom(pod); ok {
			s.Snap.HostPortPods = append(s.Snap.HostPortPods, hp)
		}
	}
}

// ListSnapshot reads a snapshot straight from the API server, for one-off
// commands (the daemon reads its informers' caches instead).
func ListSnapshot(ctx context.Context, kube kubernetes.Interface) (policies.Snapshot, error) {
	s, err := ListCluster(ctx, kube)
	if err != nil {
		return s.Snap, err
	}
	pods, err := ListPods(ctx, kube)
	if err != nil {
		return s.Snap, err
	}
	s.AddPods(pods)
	rancherPolicies, err := ListRancherPolicies(ctx, kube)
	s.AddRancherPolicies(rancherPolicies)
	return s.Snap, err
}

// ListCluster reads namespaces, nodes, the API endpoints and Services from
// the API server. Namespaces and Services are read page by page and only
// what calico-pni reads is kept, so that a refresh of a large cluster does
// not hold the whole list, managed fields and all, in memory at once.
func ListCluster(ctx context.Context, kube kubernetes.Interface) (*State, error) {
	s := &State{Versions: map[string]string{}}
	var namespaces []*corev1.Namespace
	err := EachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Namespaces().List(ctx, o)
	}, func(obj runtime.Object) {
		trimmed, _ := TrimNamespace(obj)
		namespaces = append(namespaces, trimmed.(*corev1.Namespace))
	})
	if err != nil {
		return s, fmt.Errorf("listing namespaces: %w", err)
	}
	s.AddNamespaces(namespaces)
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("listing nodes: %w", err)
	}
	s.AddNodes(Pointers(nodes.Items))
	for _, n := range nodes.Items {
		s.Versions["Node/"+n.Name] = n.ResourceVersion
	}
	slices, err := kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: KubernetesSliceSelector})
	if err != nil {
		return s, fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	s.Snap.APIEndpoints = policies.APIEndpointsFrom(Pointers(slices.Items))
	for _, e := range slices.Items {
		s.Versions["EndpointSlice/"+e.Name] = e.ResourceVersion
	}
	var services []*corev1.Service
	err = EachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) {
		if svc, ok := obj.(*corev1.Service); ok && IsExternal(svc) {
			services = append(services, svc)
			s.Versions["Service/"+svc.Namespace+"/"+svc.Name] = svc.ResourceVersion
		}
	})
	if err != nil {
		return s, fmt.Errorf("listing services: %w", err)
	}
	s.AddServices(services)
	return s, nil
}

// EachListed lists page by page and hands every item to fn.
func EachListed(ctx context.Context, list pager.ListPageFunc, fn func(runtime.Object)) error {
	p := pager.New(list)
	p.PageSize = 500
	return p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		fn(obj)
		return nil
	})
}

// ListPods reads the pods with host ports from the API server, page by
// page, for one-off commands.
func ListPods(ctx context.Context, kube kubernetes.Interface) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	err := EachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) {
		if pod, ok := obj.(*corev1.Pod); ok && HasHostPorts(pod) {
			out = append(out, pod)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	return out, nil
}

// ListManaged lists the policies calico-pni manages in one Calico API:
// GlobalNetworkPolicies, and StagedGlobalNetworkPolicies where served.
func ListManaged(ctx context.Context, dyn dynamic.Interface, api calico.API) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, kind := range api.PolicyKinds() {
		list, err := dyn.Resource(api.Resource(kind)).List(ctx, metav1.ListOptions{LabelSelector: ManagedSelector})
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

func Pointers[T any](items []T) []*T {
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

func TrimNamespace(obj any) (any, error) {
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

func TrimNode(obj any) (any, error) {
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

// TrimService keeps what decides whether a Service is reachable from
// outside the cluster, and its pods and ports.
func TrimService(obj any) (any, error) {
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

// TrimPod keeps, of a pod with host ports, its labels, phase and host
// ports, and of any other pod only its name: a cluster has many pods and
// few with host ports.
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion}}
	if !HasHostPorts(pod) {
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

func HasHostPorts(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				return true
			}
		}
	}
	return false
}

func IsExternal(svc *corev1.Service) bool {
	_, ok := policies.ServiceFrom(svc)
	return ok
}

func TrimManaged(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}

// TrimManagedFields drops the managed fields of a typed object.
func TrimManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// AddRancherPolicies keeps, of the NetworkPolicies given, those of
// Rancher's own project network isolation.
func (s *State) AddRancherPolicies(list []*networkingv1.NetworkPolicy) {
	s.Snap.RancherPolicies = nil
	for _, np := range list {
		if rancher.IsRancherPolicy(np.Labels) {
			s.Snap.RancherPolicies = append(s.Snap.RancherPolicies, np)
		}
	}
}

// ListRancherPolicies lists the NetworkPolicies of Rancher's own project
// network isolation.
func ListRancherPolicies(ctx context.Context, kube kubernetes.Interface) ([]*networkingv1.NetworkPolicy, error) {
	list, err := kube.NetworkingV1().NetworkPolicies(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: rancher.CreatorLabel + "=" + rancher.CreatorNorman})
	if err != nil {
		return nil, fmt.Errorf("listing Rancher's NetworkPolicies: %w", err)
	}
	return Pointers(list.Items), nil
}
