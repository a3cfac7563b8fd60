package replay

import (
	"fmt"
	"math"
	"net/netip"
)

// direction is the side of a connection a policy governs: egress at the
// source pod, ingress at the destination pod.
type direction int

const (
	ingress direction = iota
	egress
)

func (d direction) String() string {
	if d == ingress {
		return "ingress"
	}
	return "egress"
}

// Kinds of policy, as the evaluator names them.
const (
	kindGNP = "GlobalNetworkPolicy"
	kindNP  = "NetworkPolicy"
	kindKNP = "KubernetesNetworkPolicy"
)

// policy is an enforced policy as Felix applies it.
type policy struct {
	kind      string
	namespace string // "" for a GlobalNetworkPolicy
	// name is the policy's name without its tier prefix; a Kubernetes
	// NetworkPolicy is knp.default.<name>.
	name  string
	tier  string
	order float64 // +Inf when left out: applied last
	// selects is which endpoints it applies to, over endpoint labels.
	selects selector
	governs [2]bool // by direction
	rules   [2][]rule
	// err says why the object cannot be modelled; the policy then
	// makes every connection of an endpoint it may select an error.
	err error
}

func (p *policy) String() string {
	if p.namespace != "" {
		return fmt.Sprintf("%s %s/%s", p.kind, p.namespace, p.name)
	}
	return fmt.Sprintf("%s %s", p.kind, p.name)
}

var unordered = math.Inf(1)

// Rule actions.
const (
	actionAllow = "Allow"
	actionDeny  = "Deny"
	actionPass  = "Pass"
	actionLog   = "Log"
)

// rule is one rule of a policy.
type rule struct {
	action      string
	ipVersion   int // 4, 6, or 0 for both
	protocol    *uint8
	notProtocol *uint8
	src, dst    entity
}

// entity is a rule's source or destination.
type entity struct {
	nets, notNets []netip.Prefix
	// selector and notSelector are matched on the endpoints whose
	// addresses Felix puts into the rule's IP set: pods and network sets
	// (nil: no constraint).
	selector, notSelector selector
	ports, notPorts       portList
	service               *serviceRef
}

// portList is a list of port numbers, ranges and named ports.
type portList struct {
	ranges []portRange
	names  []string
}

func (l portList) empty() bool { return len(l.ranges) == 0 && len(l.names) == 0 }

type portRange struct{ lo, hi uint16 }

type serviceRef struct{ namespace, name string }

// tier is a Calico Tier; the default tier exists without an object.
type tier struct {
	name          string
	order         float64 // +Inf when left out
	defaultAction string  // Deny or Pass
}

// defaultTier is the default tier as Calico creates it (order 1,000,000,
// default action Deny).
var defaultTier = tier{name: "default", order: 1_000_000, defaultAction: actionDeny}

// networkSet is a GlobalNetworkSet or a NetworkSet: addresses that rule
// selectors match by the set's labels (felix/labelindex).
type networkSet struct {
	namespace string // "" for a GlobalNetworkSet
	name      string
	own       map[string]string
	nets      []netip.Prefix
}

// serviceEndpoint is an address and port of a Service's EndpointSlices.
type serviceEndpoint struct {
	addr     netip.Addr
	port     uint16
	protocol uint8
}
