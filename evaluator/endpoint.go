package evaluator

import (
	"net/netip"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// Profile label prefixes: Calico passes a namespace's labels to its pods'
// endpoints as pcns.<key> and a service account's as pcsa.<key>, each with
// projectcalico.org/name holding the object's name
// (libcalico-go/lib/backend/k8s/conversion: NamespaceToProfile,
// ServiceAccountToProfile).
const (
	NamespaceLabelPrefix      = "pcns."
	ServiceAccountLabelPrefix = "pcsa."
)

// EndpointKind says what is at one end of a connection.
type EndpointKind int

// The kinds of endpoint.
const (
	// PodEndpoint is a pod with a Calico workload endpoint: its traffic is
	// policed.
	PodEndpoint EndpointKind = iota
	// HostEndpointKind is a node's host network: a node address or a
	// host-network pod. Calico polices it only through host endpoints.
	HostEndpointKind
	// ExternalEndpoint is an address outside the cluster's endpoints.
	ExternalEndpoint
)

// Endpoint is one end of a connection.
type Endpoint struct {
	Kind EndpointKind
	// Namespace and Name name the pod (pods and host-network pods).
	Namespace, Name string
	// Node is the pod's node, or the node whose address this is.
	Node string
	// Labels are the labels Calico's selectors see on a pod's endpoint;
	// nil for other kinds.
	Labels map[string]string
	// Addrs are the endpoint's addresses: where traffic to it goes.
	Addrs []netip.Addr
	// SourceAddrs, for a host-network pod, are the addresses its traffic
	// to a pod on another node may come from: the node's tunnel and node
	// addresses. Empty when they are Addrs.
	SourceAddrs []netip.Addr
	// Family, for an endpoint whose address is not known, is the IP
	// family that address is known to have (4 or 6; 0: unknown as well).
	// A flow log names a pod without its address, yet a flow between two
	// pods of a single-stack cluster has that cluster's family.
	Family int
	// Ports are a pod's named ports.
	Ports []NamedPort
	// Placeholder is true for a namespace without pods, evaluated as a
	// pod with no labels and an unknown address.
	Placeholder bool
	// Unknown, when set, says why the endpoint cannot be evaluated (for
	// example a pod that is not running).
	Unknown string
	// nsUnknown and saUnknown are set when the pod's namespace or service
	// account was not read: selectors on their labels cannot be decided.
	nsUnknown, saUnknown bool
}

// String names the endpoint for people.
func (e *Endpoint) String() string {
	switch {
	case e.Placeholder:
		return e.Namespace + "/(a pod with no labels)"
	case e.Name != "":
		return e.Namespace + "/" + e.Name
	case e.Kind == HostEndpointKind && len(e.Addrs) > 0:
		return e.Addrs[0].String() + " (node " + e.Node + ")"
	case e.Kind == HostEndpointKind:
		return "node " + e.Node
	case len(e.Addrs) > 0:
		return e.Addrs[0].String()
	}
	return "(unknown)"
}

// endpointLabels returns the labels Felix sees on a pod's workload
// endpoint: its own labels, projectcalico.org/namespace,
// /orchestrator=k8s and /serviceaccount (which the update processor sets
// from the endpoint's service account name whatever its length, though
// the pod's conversion leaves it out from 63 characters), then the labels
// of its namespace and service account
// profiles (libcalico-go conversion: workload_endpoint_default.go,
// NamespaceToProfile, ServiceAccountToProfile). The pod's own labels
// prefixed pcns. or pcsa. never reach Felix: the workload endpoint update
// processor drops them so that a pod cannot pass itself off as one of
// another namespace or service account
// (syncersv1/updateprocessors/workloadendpointprocessor.go), which leaves
// those prefixes to the profiles.
func endpointLabels(namespace string, podLabels map[string]string, nsLabels map[string]string, sa string, saLabels map[string]string) map[string]string {
	out := make(map[string]string, len(podLabels)+len(nsLabels)+len(saLabels)+6)
	for k, v := range nsLabels {
		out[NamespaceLabelPrefix+k] = v
	}
	out[NamespaceLabelPrefix+calico.NameLabel] = namespace
	if sa != "" {
		for k, v := range saLabels {
			out[ServiceAccountLabelPrefix+k] = v
		}
		out[ServiceAccountLabelPrefix+calico.NameLabel] = sa
	}
	for k, v := range podLabels {
		if !strings.HasPrefix(k, NamespaceLabelPrefix) && !strings.HasPrefix(k, ServiceAccountLabelPrefix) {
			out[k] = v
		}
	}
	out[calico.NamespaceLabel] = namespace
	out[calico.OrchestratorLabel] = "k8s"
	if sa != "" {
		out[calico.ServiceAccountLabel] = sa
	}
	return out
}

// addr returns the endpoint's address of an IP family (4 or 6).
func (e *Endpoint) addr(family int) (netip.Addr, bool) {
	for _, a := range e.Addrs {
		if (family == 4) == a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// families returns the IP families the endpoint has addresses in.
func (e *Endpoint) families() (v4, v6 bool) {
	if len(e.Addrs) == 0 {
		return e.Family == 4, e.Family == 6
	}
	for _, a := range e.Addrs {
		if a.Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// NetworkSetLabels returns the labels Felix matches rule selectors
// against for a network set: its own, and for a NetworkSet
// projectcalico.org/namespace and the labels of its namespace's profile
// (pcns.<key>, pcns.projectcalico.org/name), given its namespace (nil
// when it was not read) (updateprocessors/networksetprocessor.go). The set's own labels take
// priority over the profile's (felix/labelindex/
// label_inheritance_index.go), and nothing drops its pcns. labels as the
// workload endpoint processor does a pod's: a NetworkSet can carry
// another namespace's labels.
func NetworkSetLabels(set NetworkSet, ns *Namespace) map[string]string {
	out := make(map[string]string, len(set.Labels)+4)
	if set.Namespace != "" && ns != nil {
		for k, v := range ns.Labels {
			out[NamespaceLabelPrefix+k] = v
		}
		out[NamespaceLabelPrefix+calico.NameLabel] = set.Namespace
	}
	for k, v := range set.Labels {
		out[k] = v
	}
	if set.Namespace != "" {
		out[calico.NamespaceLabel] = set.Namespace
	}
	return out
}
