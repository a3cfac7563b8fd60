package calico

import "net/netip"

// Node is a Kubernetes node as Calico's policies meet it; the generator
// (policies.Node) and the evaluator (evaluator.Node) read this one type,
// filled once by policies.NodeFrom from the Node object and Calico's
// annotations on it.
type Node struct {
	Name string
	// Addresses are the node's internal and external IPs: where pods may
	// reach the API server, and where traffic to the node's host network
	// goes.
	Addresses []netip.Addr
	// HostAddresses are the addresses traffic from the node's host network
	// comes from when it reaches a pod on another node: Calico's tunnel
	// addresses (IPIP, VXLAN, WireGuard), the node IP Calico uses, and the
	// internal IPs. With IPIP or VXLAN in CrossSubnet mode both the tunnel
	// and the node address occur.
	HostAddresses []netip.Addr
}
