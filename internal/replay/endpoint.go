package replay

import (
	"fmt"
	"net/netip"
	"strings"
)

// Pod is what Felix knows of a pod's workload endpoint.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	// ServiceAccount is the pod's service account (Kubernetes sets
	// "default" when a pod names none), with its labels.
	ServiceAccount       string
	ServiceAccountLabels map[string]string
	IPs                  []netip.Addr
	// Ports are the named ports of its containers, which named ports in
	// rules resolve to.
	Ports []NamedPort
	Node  string
}

// NamedPort is a named container port.
type NamedPort struct {
	Name     string
	Protocol string // TCP, UDP or SCTP
	Port     uint16
}

// Endpoint is one end of a connection: a pod at one of its addresses, or
// a plain address (outside the cluster, a node, a host-network pod),
// which has no policy of its own.
type Endpoint struct {
	// Name is "namespace/pod" for a pod, else what the address stands
	// for ("internet", "api-server").
	Name string
	Addr netip.Addr
	Pod  *Pod
	// Node is the node a plain address belongs to ("" for an address
	// outside the cluster).
	Node string
}

func (e *Endpoint) String() string {
	if e.Pod != nil {
		return e.Name
	}
	return fmt.Sprintf("%s (%s)", e.Name, e.Addr)
}

// Conn is a connection to check: from Src to Dst's address on a
// protocol and destination port.
type Conn struct {
	Src, Dst *Endpoint
	Protocol string // TCP, UDP or SCTP
	Port     uint16
}

func (c Conn) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", c.Src, c.Dst, c.Protocol, c.Port)
}

// podLabels are a pod's endpoint labels as Felix's label index sees them:
// its own labels without the pcns./pcsa. ones, which Calico strips so that
// a pod cannot pretend to be in another namespace
// (updateprocessors/workloadendpointprocessor.go), plus
// projectcalico.org/namespace, /orchestrator and /serviceaccount
// (k8s/conversion/workload_endpoint_default.go), plus, inherited from the
// namespace's and service account's profiles, their labels as pcns.<key>
// and pcsa.<key> with pcns.projectcalico.org/name and
// pcsa.projectcalico.org/name (k8s/conversion/conversion.go). A label of
// the endpoint's own wins over an inherited one (felix/labelindex).
func (ix *Index) podLabels(p *Pod) labels {
	if l, ok := ix.labels[p]; ok {
		return l
	}
	l := labels{}
	for k, v := range p.Labels {
		if !strings.HasPrefix(k, namespacePrefix) && !strings.HasPrefix(k, serviceAccountPrefix) {
			l[k] = v
		}
	}
	l[labelNamespace] = p.Namespace
	l[labelOrchestrator] = "k8s"
	if p.ServiceAccount != "" {
		l[labelServiceAccount] = p.ServiceAccount
		inherit(l, serviceAccountPrefix, p.ServiceAccountLabels, p.ServiceAccount)
	}
	if nsLabels, ok := ix.state.Namespaces[p.Namespace]; ok {
		inherit(l, namespacePrefix, nsLabels, p.Namespace)
	}
	ix.labels[p] = l
	return l
}

// inherit adds a profile's labels under a prefix, with the profile's
// name as <prefix>projectcalico.org/name (which wins over a label of the
// same key), below the endpoint's own.
func inherit(l labels, prefix string, parent map[string]string, name string) {
	inherited := map[string]string{}
	for k, v := range parent {
		inherited[prefix+k] = v
	}
	inherited[prefix+labelName] = name
	for k, v := range inherited {
		if _, own := l[k]; !own {
			l[k] = v
		}
	}
}

// setLabels are a network set's labels: its own, and for a NetworkSet
// projectcalico.org/namespace and its namespace's labels as pcns.<key>
// (updateprocessors/networksetprocessor.go).
func (ix *Index) setLabels(s *networkSet) labels {
	l := labels{}
	for k, v := range s.own {
		l[k] = v
	}
	if s.namespace == "" {
		return l
	}
	l[labelNamespace] = s.namespace
	if nsLabels, ok := ix.state.Namespaces[s.namespace]; ok {
		inherit(l, namespacePrefix, nsLabels, s.namespace)
	}
	return l
}
