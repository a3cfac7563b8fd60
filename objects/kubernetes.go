package objects

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// Calico's pod address annotations, read when the pod's status has none
// (libcalico-go conversion.go, getPodIPs).
const (
	podIPsAnnotation = "cni.projectcalico.org/podIPs"
	podIPAnnotation  = "cni.projectcalico.org/podIP"
)

// kubernetes reads an object of Kubernetes' own API groups; at names it
// in notes.
func (r *Reader) kubernetes(u *unstructured.Unstructured, apiVersion, at string) error {
	kind := u.GetKind()
	switch {
	case apiVersion == "v1" && kind == "Namespace":
		r.cluster.Namespaces = append(r.cluster.Namespaces, evaluator.Namespace{Name: u.GetName(), Labels: u.GetLabels(), Annotations: u.GetAnnotations()})
		if r.snap != nil {
			return r.snap.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Labels: u.GetLabels(), Annotations: u.GetAnnotations()}})
		}
	case apiVersion == "v1" && kind == "Pod":
		var pod corev1.Pod
		if err := convert(u, &pod); err != nil {
			return err
		}
		p, err := podFrom(&pod)
		if err != nil {
			return err
		}
		r.cluster.Pods = append(r.cluster.Pods, p)
		if r.snap != nil {
			return r.snap.AddPod(&pod)
		}
	case apiVersion == "v1" && kind == "Node":
		var n corev1.Node
		if err := convert(u, &n); err != nil {
			return err
		}
		if err := policies.CheckNodeAddresses(&n); err != nil {
			return err
		}
		r.cluster.Nodes = append(r.cluster.Nodes, policies.NodeFrom(&n))
		if r.snap != nil {
			return r.snap.AddNode(&n)
		}
	case apiVersion == "v1" && kind == "Service":
		// The evaluator reads Services through their EndpointSlices; the
		// generator reads the external ones.
		if r.snap != nil {
			var svc corev1.Service
			if err := convert(u, &svc); err != nil {
				return err
			}
			return r.snap.AddService(&svc)
		}
	case apiVersion == "v1" && kind == "ServiceAccount":
		r.cluster.ServiceAccounts = append(r.cluster.ServiceAccounts, evaluator.ServiceAccount{Namespace: u.GetNamespace(), Name: u.GetName(), Labels: u.GetLabels()})
	case apiVersion == "discovery.k8s.io/v1" && kind == "EndpointSlice":
		var s discoveryv1.EndpointSlice
		if err := convert(u, &s); err != nil {
			return err
		}
		if r.snap != nil {
			r.snap.AddEndpointSlice(&s)
		}
		return r.endpointSlice(&s)
	case apiVersion == "networking.k8s.io/v1" && kind == "NetworkPolicy":
		var np networkingv1.NetworkPolicy
		if err := convert(u, &np); err != nil {
			return err
		}
		kubernetesDefaultPolicyTypes(&np)
		p, notes := evaluator.FromKubernetes(&np)
		r.notes = append(r.notes, notes...)
		r.cluster.Policies = append(r.cluster.Policies, p)
		r.knpSeen[np.Namespace+"/"+np.Name] = true
		r.noteRancher(&np, &p)
		if r.snap != nil {
			r.snap.AddNetworkPolicy(&np)
		}
	default:
		r.notes = append(r.notes, at+": skipped: not a kind calico-pni reads")
	}
	return nil
}

// convert reads a typed object; a string field holding what YAML read as
// a boolean or a number gets an error naming it.
func convert(u *unstructured.Unstructured, into any) error {
	return policies.ConvertObject(u.Object, into)
}

// podFrom reads what a pod's Calico endpoint holds.
func podFrom(pod *corev1.Pod) (evaluator.Pod, error) {
	if pod.Namespace == "" {
		return evaluator.Pod{}, fmt.Errorf("metadata.namespace must be set")
	}
	p := evaluator.Pod{
		Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels,
		ServiceAccount: pod.Spec.ServiceAccountName, Node: pod.Spec.NodeName, HostNetwork: pod.Spec.HostNetwork,
		Finished: pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed,
	}
	var texts []string
	var field string
	switch {
	case len(pod.Status.PodIPs) > 0:
		for _, ip := range pod.Status.PodIPs {
			texts = append(texts, ip.IP)
		}
		field = "status.podIPs"
	case pod.Status.PodIP != "":
		texts, field = []string{pod.Status.PodIP}, "status.podIP"
	case pod.Annotations[podIPsAnnotation] != "":
		texts, field = strings.Split(pod.Annotations[podIPsAnnotation], ","), "metadata.annotations."+podIPsAnnotation
	case pod.Annotations[podIPAnnotation] != "":
		texts, field = []string{pod.Annotations[podIPAnnotation]}, "metadata.annotations."+podIPAnnotation
	}
	for _, text := range texts {
		a, err := parseAddr(text)
		if err != nil {
			return p, fmt.Errorf("%s: %q is not an IP address", field, text)
		}
		p.IPs = append(p.IPs, a)
	}
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.Containers...), pod.Spec.InitContainers...) {
		for _, cp := range c.Ports {
			if cp.Name == "" || cp.ContainerPort == 0 {
				continue
			}
			protocol := string(cp.Protocol)
			if protocol == "" {
				protocol = string(corev1.ProtocolTCP)
			}
			p.Ports = append(p.Ports, evaluator.NamedPort{Name: cp.Name, Protocol: protocol, Port: uint16(cp.ContainerPort)})
		}
	}
	return p, nil
}

// parseAddr reads an address or, as Calico's annotations hold, a CIDR.
func parseAddr(text string) (netip.Addr, error) {
	text = strings.TrimSpace(text)
	if p, err := netip.ParsePrefix(text); err == nil {
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(text)
	return a.Unmap(), err
}

// endpointSlice adds the endpoints of a slice to its Service's.
func (r *Reader) endpointSlice(s *discoveryv1.EndpointSlice) error {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		r.notes = append(r.notes, fmt.Sprintf("EndpointSlice %s/%s: skipped: no %s label", s.Namespace, s.Name, discoveryv1.LabelServiceName))
		return nil
	}
	key := s.Namespace + "/" + svc
	out := r.slices[key]
	if out == nil {
		out = &evaluator.ServiceEndpoints{Namespace: s.Namespace, Name: svc}
		r.slices[key] = out
		r.sliceOrder = append(r.sliceOrder, key)
	}
	for _, port := range s.Ports {
		if port.Port == nil {
			continue
		}
		protocol := string(corev1.ProtocolTCP)
		if port.Protocol != nil {
			protocol = string(*port.Protocol)
		}
		for i, e := range s.Endpoints {
			for _, text := range e.Addresses {
				a, err := parseAddr(text)
				if err != nil {
					if s.AddressType == discoveryv1.AddressTypeFQDN {
						continue
					}
					return fmt.Errorf("endpoints[%d].addresses: %q is not an IP address", i, text)
				}
				out.Endpoints = append(out.Endpoints, evaluator.ServiceEndpoint{Addr: a, Protocol: protocol, Port: uint16(*port.Port)})
			}
		}
	}
	return nil
}
