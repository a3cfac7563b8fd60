package evaluator

import (
	"fmt"
	"net/netip"
)

// PodEndpoint returns the endpoint of a pod, or an error naming what is
// missing when the index has no such pod.
func (ix *Index) PodEndpoint(namespace, name string) (*Endpoint, error) {
	p, ok := ix.pods[namespace+"/"+name]
	if !ok {
		if _, nsKnown := ix.namespaces[namespace]; !nsKnown && len(ix.podsByNS[namespace]) == 0 {
			return nil, fmt.Errorf("no pod %s/%s: there is no namespace %s", namespace, name, namespace)
		}
		return nil, fmt.Errorf("no pod %s/%s in namespace %s", namespace, name, namespace)
	}
	return ix.podEndpoint(p), nil
}

// NamespaceEndpoint returns an endpoint standing for any pod of a
// namespace: its first running pod by name, or, when it has none, a pod
// with no labels and an unknown address. The note says which was used.
func (ix *Index) NamespaceEndpoint(namespace string) (*Endpoint, string, error) {
	if _, ok := ix.namespaces[namespace]; !ok {
		return nil, "", fmt.Errorf("no namespace %s", namespace)
	}
	pods := ix.podsByNS[namespace]
	for _, p := range pods {
		if running(p) && !p.HostNetwork && len(p.IPs) > 0 {
			if len(pods) == 1 {
				return ix.podEndpoint(p), fmt.Sprintf("namespace %s: using its only pod, %s", namespace, p.Name), nil
			}
			return ix.podEndpoint(p), fmt.Sprintf("namespace %s: using pod %s, the first by name of its %d pods", namespace, p.Name, len(pods)), nil
		}
	}
	return ix.Placeholder(namespace), fmt.Sprintf("namespace %s has no running pod: evaluated as a pod with no labels and an unknown address", namespace), nil
}

// Placeholder returns a pod with no labels and an unknown address in a
// namespace.
func (ix *Index) Placeholder(namespace string) *Endpoint {
	ns := ix.namespaces[namespace]
	var nsLabels map[string]string
	if ns != nil {
		nsLabels = ns.Labels
	}
	return &Endpoint{
		Kind: PodEndpoint, Namespace: namespace, Placeholder: true, nsUnknown: ns == nil,
		Labels: endpointLabels(namespace, nil, nsLabels, "", nil),
	}
}

// AddrEndpoint returns the endpoint at an address: the running pod that
// has it, the node that has it, or an address outside the cluster.
func (ix *Index) AddrEndpoint(a netip.Addr) *Endpoint {
	a = a.Unmap()
	if p, ok := ix.byAddr[a]; ok {
		return ix.podEndpoint(p)
	}
	if n, ok := ix.nodeByAddr[a]; ok {
		return &Endpoint{Kind: HostEndpointKind, Node: n.Name, Addrs: []netip.Addr{a}}
	}
	return &Endpoint{Kind: ExternalEndpoint, Addrs: []netip.Addr{a}}
}

// podEndpoint builds the endpoint of a pod. A host-network pod is its
// node's host; its traffic may come from any of the node's host
// addresses.
func (ix *Index) podEndpoint(p *Pod) *Endpoint {
	ep := &Endpoint{Kind: PodEndpoint, Namespace: p.Namespace, Name: p.Name, Node: p.Node, Addrs: p.IPs, Ports: p.Ports}
	switch {
	case p.Finished:
		ep.Unknown = fmt.Sprintf("pod %s/%s has finished: it has no network any more", p.Namespace, p.Name)
		return ep
	case p.Node == "":
		ep.Unknown = fmt.Sprintf("pod %s/%s is not scheduled (no spec.nodeName): it has no network yet", p.Namespace, p.Name)
		return ep
	case p.HostNetwork:
		ep.Kind = HostEndpointKind
		if n, ok := ix.nodes[p.Node]; ok && len(n.HostAddresses) > 0 {
			ep.SourceAddrs = n.HostAddresses
		}
		return ep
	case len(p.IPs) == 0:
		ep.Unknown = fmt.Sprintf("pod %s/%s has no address yet (status.podIPs is empty)", p.Namespace, p.Name)
		return ep
	}
	ns, nsKnown := ix.namespaces[p.Namespace]
	var nsLabels map[string]string
	if nsKnown {
		nsLabels = ns.Labels
	}
	saLabels, saKnown := ix.saLabels[p.Namespace+"/"+p.ServiceAccount]
	ep.nsUnknown = !nsKnown
	ep.saUnknown = p.ServiceAccount != "" && !saKnown
	ep.Labels = endpointLabels(p.Namespace, p.Labels, nsLabels, p.ServiceAccount, saLabels)
	return ep
}
