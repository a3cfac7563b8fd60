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
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Namespace is what the generator reads of a namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// Node is what the generator reads of a node: the addresses other pods see
// the API server and host-network pods at.
type Node struct {
	Name      string
	Addresses []netip.Addr
}

// APIEndpoint is one endpoint of the default/kubernetes Service: where the
// API server really listens after kube-proxy's DNAT.
type APIEndpoint struct {
	Addr netip.Addr
	Port int
}

// Snapshot is the part of the cluster the generator reads.
type Snapshot struct {
	Namespaces   []Namespace
	Nodes        []Node
	APIEndpoints []APIEndpoint
}

// NamespaceFrom copies what the generator reads of a Namespace.
func NamespaceFrom(ns *corev1.Namespace) Namespace {
	return Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}
}

// NodeFrom copies a node's internal and external IP addresses.
func NodeFrom(n *corev1.Node) Node {
	node := Node{Name: n.Name}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if addr, err := netip.ParseAddr(a.Address); err == nil {
			node.Addresses = append(node.Addresses, addr.Unmap())
		}
	}
	slices.SortFunc(node.Addresses, netip.Addr.Compare)
	node.Addresses = slices.Compact(node.Addresses)
	return node
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
