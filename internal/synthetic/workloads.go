package synthetic

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// Workloads are what calico-pni's policy evaluator reads beyond
// namespaces and nodes: pods, and the NetworkPolicies the cluster's users
// wrote themselves.
type Workloads struct {
	Pods            []*corev1.Pod
	NetworkPolicies []*networkingv1.NetworkPolicy
}

// apps are the workloads every user namespace runs a mix of.
var apps = []string{"web", "api", "worker"}

// Workloads gives every user namespace podsPerNamespace pods (app web,
// api or worker, spread over the nodes, one address each) and writes
// policies Kubernetes NetworkPolicies into user namespaces picked at
// random, of four shapes users write: web to api within the namespace on
// 8080, default deny ingress, ingress from the nginx controller's
// namespaces on 80, and worker egress to the internet on 443. The same
// cluster and counts always give the same workloads.
func (c *Cluster) Workloads(podsPerNamespace, policies int) *Workloads {
	r := rand.New(rand.NewPCG(uint64(len(c.Namespaces)), uint64(policies)))
	w := &Workloads{}
	var users []string
	next := uint32(0)
	for _, ns := range c.Namespaces {
		system := ns.Labels["field.cattle.io/projectId"] == c.SystemProject
		if !system {
			users = append(users, ns.Name)
		}
		count := podsPerNamespace
		if system {
			count = 1
		}
		for i := range count {
			app := apps[(i+r.IntN(len(apps)))%len(apps)]
			if system {
				app = ns.Name
			}
			w.Pods = append(w.Pods, c.pod(ns.Name, app, i, next))
			next++
		}
	}
	for i := range policies {
		ns := users[r.IntN(len(users))]
		w.NetworkPolicies = append(w.NetworkPolicies, userPolicy(ns, i))
	}
	return w
}

func (c *Cluster) pod(namespace, app string, i int, n uint32) *corev1.Pod {
	base := netip.MustParseAddr("10.64.0.0").As4()
	ip := netip.AddrFrom4([4]byte{base[0], base[1] + byte(n>>16), byte(n >> 8), byte(n)}).String()
	node := ""
	if len(c.Nodes) > 0 {
		node = c.Nodes[int(n)%len(c.Nodes)].Name
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%d", app, i), Namespace: namespace,
			Labels: map[string]string{"app": app, "pod-template-hash": fmt.Sprintf("%08x", n*2654435761)},
		},
		Spec: corev1.PodSpec{
			NodeName: node, ServiceAccountName: "default",
			Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func userPolicy(namespace string, i int) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := func(n int) []networkingv1.NetworkPolicyPort {
		p := intstr.FromInt32(int32(n))
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}}
	}
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
	}
	app := func(a string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{"app": a}}
	}
	switch i % 4 {
	case 0:
		np.Name = fmt.Sprintf("api-from-web-%d", i)
		np.Spec.PodSelector = app("api")
		web := app("web")
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &web}}, Ports: port(8080)}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 1:
		np.Name = fmt.Sprintf("default-deny-%d", i)
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		np.Name = fmt.Sprintf("web-from-nginx-%d", i)
		np.Spec.PodSelector = app("web")
		nginx := metav1.LabelSelector{MatchLabels: map[string]string{"ingress": "nginx"}}
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &nginx}}, Ports: port(80)}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	default:
		np.Name = fmt.Sprintf("worker-to-internet-%d", i)
		np.Spec.PodSelector = app("worker")
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}}, Ports: port(443)}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	}
	return np
}

// EvaluatorObjects returns the cluster as `kubectl get -o yaml` would list
// it for calico-pni explain and matrix, with calico-pni installed: its
// namespaces (with the labels calico-pni gives them), nodes, the API
// server's EndpointSlice, the workloads, and calico-pni's policies as it
// writes them through Calico's v3 API.
func (c *Cluster) EvaluatorObjects(w *Workloads) ([]any, error) {
	snap := c.Snapshot()
	d := policies.Generate(snap, config.Default())
	labels := map[string]map[string]string{}
	for _, ns := range d.Namespaces {
		labels[ns.Name] = ns.Labels
	}
	var out []any
	add := func(obj any) error {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	}
	for _, ns := range c.Namespaces {
		copied := ns.DeepCopy()
		copied.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		for k, v := range labels[ns.Name] {
			copied.Labels[k] = v
		}
		if err := add(copied); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		copied := n.DeepCopy()
		copied.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
		if err := add(copied); err != nil {
			return nil, err
		}
	}
	ready, https, port, tcp := true, "https", int32(6443), corev1.ProtocolTCP
	if err := add(&discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{NodeAddress(0, 0)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &https, Port: &port, Protocol: &tcp}},
	}); err != nil {
		return nil, err
	}
	for _, p := range w.Pods {
		if err := add(p); err != nil {
			return nil, err
		}
	}
	for _, np := range w.NetworkPolicies {
		if err := add(np); err != nil {
			return nil, err
		}
	}
	api := calico.API{Group: calico.GroupV3}
	for _, u := range d.Manifests(api, false) {
		out = append(out, (*unstructured.Unstructured)(u).Object)
	}
	return out, nil
}
