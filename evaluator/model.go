package evaluator

import (
	"net/netip"

	"github.com/calico-pni/calico-pni/calico"
)

// Cluster is everything the evaluator reads of a cluster. Loaders fill it
// from Kubernetes and Calico objects; tests write it by hand.
type Cluster struct {
	Namespaces      []Namespace
	Pods            []Pod
	ServiceAccounts []ServiceAccount
	// Services holds the endpoints of Services, from their EndpointSlices.
	// A Service without an entry here is unknown: a rule matching it by
	// name cannot be decided.
	Services []ServiceEndpoints
	Nodes    []Node
	// Tiers lists the Tier objects. The default tier exists even when it
	// is not listed.
	Tiers []Tier
	// Policies are the enforced policies, of every kind.
	Policies []Policy
	// Staged are the staged policies. They are evaluated only with
	// WithStaged.
	Staged        []Policy
	NetworkSets   []NetworkSet
	HostEndpoints []HostEndpoint
	// EndpointToHostAction is Felix's defaultEndpointToHostAction (Drop,
	// Accept or Return) from FelixConfiguration default, "" when not known.
	// It decides traffic from a pod to its own node after egress policy.
	EndpointToHostAction string
	// CalicoVersion is the cluster's Calico version, zero when unknown. It
	// decides what Felix does where Calico releases differ: how policies
	// of equal order are ordered, and which rules Calico accepts.
	CalicoVersion calico.Version
	// Unsupported lists objects whose effect the evaluator does not model
	// and that may change any verdict (for example an AdminNetworkPolicy).
	// While it is not empty every verdict is indeterminate.
	Unsupported []string
}

// Namespace is a namespace's name, labels and annotations (one type
// with the generator's input: calico.Namespace). The evaluator reads the
// labels; the matrix groups namespaces by the Rancher project in the
// annotations.
type Namespace = calico.Namespace

// Pod is a pod as its Calico workload endpoint sees it.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	// ServiceAccount is spec.serviceAccountName ("" if not set).
	ServiceAccount string
	// Node is spec.nodeName; a pod that is not scheduled has no endpoint.
	Node        string
	HostNetwork bool
	// Finished is true for a pod that succeeded or failed: it has no
	// endpoint any more.
	Finished bool
	// IPs are the pod's addresses (status.podIPs); none while pending.
	IPs []netip.Addr
	// Ports are the container ports that have a name: what a named port
	// in a rule resolves to.
	Ports []NamedPort
}

// NamedPort is a container port with a name.
type NamedPort struct {
	Name     string
	Protocol string // TCP, UDP or SCTP
	Port     uint16
}

// ServiceAccount is a service account and its labels.
type ServiceAccount struct {
	Namespace, Name string
	Labels          map[string]string
}

// ServiceEndpoints are the endpoints of one Service, from all of its
// EndpointSlices. Felix includes every address of a slice, ready or not
// (felix/serviceindex/serviceindex.go).
type ServiceEndpoints struct {
	Namespace, Name string
	Endpoints       []ServiceEndpoint
}

// ServiceEndpoint is one address and port of a Service.
type ServiceEndpoint struct {
	Addr     netip.Addr
	Protocol string
	Port     uint16
}

// Node is a node's addresses: one type for the generator and the
// evaluator (calico.Node).
type Node = calico.Node

// Tier is a Calico Tier.
type Tier struct {
	Name string
	// Order is nil for a tier without order, which comes last.
	Order *float64
	// DefaultAction is Deny (also when empty) or Pass.
	DefaultAction calico.Action
}

// NetworkSet is a Calico NetworkSet (namespaced) or GlobalNetworkSet
// (Namespace ""): labelled address ranges that rule selectors match.
type NetworkSet struct {
	Namespace, Name string
	Labels          map[string]string
	Nets            []netip.Prefix
}

// HostEndpoint is a Calico HostEndpoint. The evaluator does not model the
// policy of host endpoints; their presence makes traffic to and from
// hosts indeterminate.
type HostEndpoint struct {
	Name, Node  string
	Labels      map[string]string
	ExpectedIPs []netip.Addr
}

// Default tier facts: the tier every policy without a tier is in, and its
// order from Calico 3.29 on (before, it had none and came last, which
// orders it the same when it is the only tier).
const (
	DefaultTier      = calico.DefaultTier
	defaultTierOrder = 1_000_000.0
)
