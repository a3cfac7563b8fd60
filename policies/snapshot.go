// Package policies computes every Calico policy calico-pni wants, and the
// labels and status every namespace should carry, from a snapshot of the
// cluster and the configuration. It is pure: no client, no clock, no
// randomness, and its output is sorted, so the same input always gives the
// same output.
//
// How isolation is switched on. In Calico, any policy that selects a pod
// turns on default deny for that pod in that direction. calico-pni's
// policies therefore select namespaces only through a label that calico-pni
// itself puts on a namespace (calico-pni.io/isolated) once every policy the
// namespace needs is in place; removing that label is the first step when
// a namespace leaves isolation. The label is the single switch: a namespace
// is never denied something its final state allows, at install, at
// uninstall or when it moves between projects.
package policies

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/rancher"
)

// Namespace is a namespace's name, labels and annotations: one type for
// the generator and the evaluator (calico.Namespace).
type Namespace = calico.Namespace

// Node is a node's addresses: one type for the generator and the
// evaluator (calico.Node).
type Node = calico.Node

// APIEndpoint is one endpoint of the default/kubernetes Service: where the
// API server really listens after kube-proxy's DNAT.
type APIEndpoint struct {
	Addr netip.Addr
	Port int
}

// Service is a Service reachable from outside the cluster: type NodePort
// or LoadBalancer, or with externalIPs.
type Service struct {
	Namespace, Name string
	// Selector selects the Service's pods; empty for a Service whose
	// endpoints are managed by hand.
	Selector map[string]string
	Ports    []ServicePort
}

// ServicePort is the port a Service's pods receive on, after kube-proxy's
// DNAT: the target port (a number or a container port name).
type ServicePort struct {
	Protocol   string
	TargetPort calico.Port
}

// HostPortPod is a pod with host ports.
type HostPortPod struct {
	Namespace, Name string
	Labels          map[string]string
	// Ports are the container ports bound to host ports: where traffic
	// arrives after the host port's DNAT.
	Ports []ServicePort
}

// Snapshot is the part of the cluster the generator reads.
type Snapshot struct {
	Namespaces       []Namespace
	Nodes            []Node
	APIEndpoints     []APIEndpoint
	ExternalServices []Service
	HostPortPods     []HostPortPod
	// RancherPolicies are the Kubernetes NetworkPolicies of Rancher's own
	// project network isolation (labelled cattle.io/creator: norman).
	RancherPolicies []*networkingv1.NetworkPolicy
	// CalicoVersion is the cluster's Calico version (zero when unknown).
	CalicoVersion calico.Version
	// Promoted lists the staged projects that the promotion gate enforced
	// (projects.promote.automatic), each with the sentence their
	// namespaces' status gives as the reason. A promoted project is
	// enforced although projects.stage names it; with rollout: stage,
	// nothing is.
	Promoted map[string]string
}

// NamespaceFrom copies what the generator reads of a Namespace.
func NamespaceFrom(ns *corev1.Namespace) Namespace {
	return Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}
}

// Calico's node annotations that hold host-network source addresses.
// The tunnel addresses are plain IPs; the node addresses are CIDRs
// ("10.0.0.5/24").
var (
	tunnelAnnotations = []string{
		"projectcalico.org/IPv4IPIPTunnelAddr",
		"projectcalico.org/IPv4VXLANTunnelAddr",
		"projectcalico.org/IPv6VXLANTunnelAddr",
		"projectcalico.org/IPv4WireguardInterfaceAddr",
		"projectcalico.org/IPv6WireguardInterfaceAddr",
	}
	nodeIPAnnotations = []string{"projectcalico.org/IPv4Address", "projectcalico.org/IPv6Address"}
)

// NodeFrom reads a node's addresses and Calico's annotations.
func NodeFrom(n *corev1.Node) Node {
	node := Node{Name: n.Name}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if addr, err := netip.ParseAddr(a.Address); err == nil {
			node.Addresses = append(node.Addresses, addr.Unmap())
			if a.Type == corev1.NodeInternalIP {
				node.HostAddresses = append(node.HostAddresses, addr.Unmap())
			}
		}
	}
	for _, key := range tunnelAnnotations {
		if addr, err := netip.ParseAddr(n.Annotations[key]); err == nil {
			node.HostAddresses = append(node.HostAddresses, addr.Unmap())
		}
	}
	for _, key := range nodeIPAnnotations {
		if p, err := netip.ParsePrefix(n.Annotations[key]); err == nil {
			node.HostAddresses = append(node.HostAddresses, p.Addr().Unmap())
		}
	}
	node.Addresses = sortedAddrs(node.Addresses)
	node.HostAddresses = sortedAddrs(node.HostAddresses)
	return node
}

func sortedAddrs(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// ServiceFrom reads a Service and reports whether it is reachable from
// outside the cluster (NodePort, LoadBalancer, or with externalIPs).
func ServiceFrom(svc *corev1.Service) (Service, bool) {
	external := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0
	if !external {
		return Service{}, false
	}
	out := Service{Namespace: svc.Namespace, Name: svc.Name, Selector: svc.Spec.Selector}
	for _, p := range svc.Spec.Ports {
		target := calico.PortNumber(uint16(p.Port))
		switch {
		case p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "":
			target = calico.Port{Name: p.TargetPort.StrVal}
		case p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0:
			target = calico.PortNumber(uint16(p.TargetPort.IntVal))
		}
		out.Ports = append(out.Ports, ServicePort{Protocol: protocolOf(p.Protocol), TargetPort: target})
	}
	return out, true
}

// HostPortPodFrom reads a pod and reports whether it binds host ports.
// Pods that have finished are left out.
func HostPortPodFrom(pod *corev1.Pod) (HostPortPod, bool) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return HostPortPod{}, false
	}
	out := HostPortPod{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				out.Ports = append(out.Ports, ServicePort{Protocol: protocolOf(p.Protocol), TargetPort: calico.PortNumber(uint16(p.ContainerPort))})
			}
		}
	}
	return out, len(out.Ports) > 0
}

func protocolOf(p corev1.Protocol) string {
	if p == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(p)
}

// APIEndpointsFrom reads the ready endpoints of the default/kubernetes
// Service from its EndpointSlices (label kubernetes.io/service-name).
func APIEndpointsFrom(slices_ []*discoveryv1.EndpointSlice) []APIEndpoint {
	var out []APIEndpoint
	for _, s := range slices_ {
		for _, p := range s.Ports {
			if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					if addr, err := netip.ParseAddr(a); err == nil {
						out = append(out, APIEndpoint{Addr: addr.Unmap(), Port: int(*p.Port)})
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b APIEndpoint) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return slices.Compact(out)
}

// WithProjects returns the snapshot with the given namespaces in the given
// projects ("" for none), as if Rancher had put them there. A pass that
// finishes a move that was interrupted plans on it, so that the move ends
// where it was planned to end (package plan, InTransit).
func (s Snapshot) WithProjects(projects map[string]string) Snapshot {
	out := s
	out.Namespaces = slices.Clone(s.Namespaces)
	for i, ns := range out.Namespaces {
		p, ok := projects[ns.Name]
		if !ok {
			continue
		}
		labels, annotations := maps.Clone(ns.Labels), maps.Clone(ns.Annotations)
		if labels == nil {
			labels = map[string]string{}
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		cluster := "local"
		if c, _, found := strings.Cut(annotations[rancher.ProjectIDKey], ":"); found {
			cluster = c
		}
		if p == "" {
			delete(labels, rancher.ProjectIDKey)
			delete(annotations, rancher.ProjectIDKey)
		} else {
			labels[rancher.ProjectIDKey] = p
			annotations[rancher.ProjectIDKey] = cluster + ":" + p
		}
		out.Namespaces[i] = Namespace{Name: ns.Name, Labels: labels, Annotations: annotations}
	}
	return out
}
