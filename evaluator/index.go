package evaluator

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"

	"github.com/calico-pni/calico-pni/calico"
)

// Option changes how an Index evaluates.
type Option func(*options)

type options struct {
	staged bool
}

// WithStaged evaluates staged policies as if they were enforced: a staged
// Set puts its policy in place of the enforced policy of the same kind,
// namespace and name (or adds it), a staged Delete removes that policy.
// Hits then name the staged kind, so that the trace says what comes from
// a staged policy.
func WithStaged() Option { return func(o *options) { o.staged = true } }

// Index holds a Cluster prepared for evaluation: selectors parsed, policies
// in tier order, endpoints by name and address. Build it once with
// NewIndex and evaluate as many connections as needed; it is safe for
// concurrent use.
type Index struct {
	namespaces map[string]*Namespace
	pods       map[string]*Pod // "namespace/name"
	podsByNS   map[string][]*Pod
	byAddr     map[netip.Addr]*Pod
	saLabels   map[string]map[string]string // "namespace/name"
	services   map[string]*ServiceEndpoints
	nodes      map[string]*Node
	nodeByAddr map[netip.Addr]*Node
	// allocated holds every address the cluster gave out: pod, node and
	// tunnel addresses. A pod whose own address is unknown has none of
	// them, which decides matches against single addresses.
	allocated map[netip.Addr]bool
	netsets   []compiledNetworkSet

	tiers      []*tierInfo
	globals    globalIndex
	namespaced map[string][]*compiledPolicy
	all        []*compiledPolicy
	byPolicy   map[*Policy]*compiledPolicy

	hostEndpoints  []HostEndpoint
	unsupported    []string
	endpointToHost string
	notes          []string

	selections sync.Map // selectionKey -> *selection
}

// tierInfo is a tier as the evaluator orders it.
type tierInfo struct {
	name          string
	order         *float64
	defaultAction calico.Action
	// known is false for a tier that policies name but no Tier object
	// defines; Felix orders such tiers after all others.
	known bool
}

type compiledNetworkSet struct {
	NetworkSet
	labels map[string]string
}

// NewIndex prepares a cluster for evaluation. The cluster must not change
// afterwards.
func NewIndex(c *Cluster, opts ...Option) *Index {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ix := &Index{
		namespaces: map[string]*Namespace{}, pods: map[string]*Pod{}, podsByNS: map[string][]*Pod{},
		byAddr: map[netip.Addr]*Pod{}, saLabels: map[string]map[string]string{}, services: map[string]*ServiceEndpoints{},
		nodes: map[string]*Node{}, nodeByAddr: map[netip.Addr]*Node{}, allocated: map[netip.Addr]bool{},
		namespaced: map[string][]*compiledPolicy{}, byPolicy: map[*Policy]*compiledPolicy{}, hostEndpoints: c.HostEndpoints, unsupported: c.Unsupported,
		endpointToHost: c.EndpointToHostAction,
	}
	for i := range c.Namespaces {
		ix.namespaces[c.Namespaces[i].Name] = &c.Namespaces[i]
	}
	for i := range c.Pods {
		p := &c.Pods[i]
		ix.pods[p.Namespace+"/"+p.Name] = p
		ix.podsByNS[p.Namespace] = append(ix.podsByNS[p.Namespace], p)
		if running(p) && !p.HostNetwork {
			for _, a := range p.IPs {
				ix.byAddr[a] = p
				ix.allocated[a] = true
			}
		}
	}
	for _, pods := range ix.podsByNS {
		slices.SortFunc(pods, func(a, b *Pod) int { return cmp.Compare(a.Name, b.Name) })
	}
	for i := range c.ServiceAccounts {
		sa := &c.ServiceAccounts[i]
		labels := sa.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		ix.saLabels[sa.Namespace+"/"+sa.Name] = labels
	}
	for i := range c.Services {
		s := &c.Services[i]
		ix.services[s.Namespace+"/"+s.Name] = s
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		ix.nodes[n.Name] = n
		for _, a := range append(slices.Clone(n.Addresses), n.HostAddresses...) {
			ix.nodeByAddr[a] = n
			ix.allocated[a] = true
		}
	}
	for _, ns := range c.NetworkSets {
		ix.netsets = append(ix.netsets, compiledNetworkSet{NetworkSet: ns, labels: NetworkSetLabels(ns, ix.namespaces[ns.Namespace])})
	}
	ix.addPolicies(c, o)
	return ix
}

// running reports whether a pod has a Calico workload endpoint or, for a
// host-network pod, runs at all: it is scheduled and has not finished
// (conversion.go, IsValidCalicoWorkloadEndpoint, IsFinished).
func running(p *Pod) bool { return p.Node != "" && !p.Finished }

// addPolicies compiles the policies in effect and orders the tiers.
func (ix *Index) addPolicies(c *Cluster, o options) {
	policies := make([]*Policy, 0, len(c.Policies))
	for i := range c.Policies {
		policies = append(policies, &c.Policies[i])
	}
	if o.staged {
		policies = withStaged(policies, c.Staged)
	}
	tiers := map[string]*tierInfo{}
	for _, t := range c.Tiers {
		action := t.DefaultAction
		if action == "" {
			action = calico.Deny
		}
		tiers[t.Name] = &tierInfo{name: t.Name, order: t.Order, defaultAction: action, known: true}
	}
	if tiers[DefaultTier] == nil {
		order := defaultTierOrder
		tiers[DefaultTier] = &tierInfo{name: DefaultTier, order: &order, defaultAction: calico.Deny, known: true}
	}
	var global []*compiledPolicy
	for _, p := range policies {
		cp := compilePolicy(p, c.CalicoVersion)
		ix.notes = append(ix.notes, cp.notes...)
		name := p.TierName()
		if tiers[name] == nil {
			tiers[name] = &tierInfo{name: name, defaultAction: calico.Deny}
			ix.notes = append(ix.notes, fmt.Sprintf("tier %s has policies but no Tier object: Felix orders it after every other tier, with default action Deny", name))
		}
		cp.tier = tiers[name]
		ix.all = append(ix.all, cp)
		ix.byPolicy[p] = cp
		if p.Kind.Namespaced() {
			ix.namespaced[p.Namespace] = append(ix.namespaced[p.Namespace], cp)
		} else {
			global = append(global, cp)
		}
	}
	for _, t := range tiers {
		ix.tiers = append(ix.tiers, t)
	}
	slices.SortFunc(ix.tiers, compareTiers)
	rank := map[*tierInfo]int{}
	for i, t := range ix.tiers {
		rank[t] = i
	}
	ties := ties332
	if v := c.CalicoVersion; v != (calico.Version{}) && !v.AtLeast(3, 32) {
		ties = tiesV1Names
	}
	byOrder := func(a, b *compiledPolicy) int {
		if c := cmp.Compare(rank[a.tier], rank[b.tier]); c != 0 {
			return c
		}
		return comparePolicies(a.Policy, b.Policy, ties)
	}
	slices.SortFunc(ix.all, byOrder)
	for i, cp := range ix.all {
		cp.pos = i
	}
	slices.SortFunc(global, byOrder)
	ix.globals = newGlobalIndex(global)
	for _, list := range ix.namespaced {
		slices.SortFunc(list, byOrder)
	}
	if c.CalicoVersion == (calico.Version{}) {
		ix.noteUnknownTies(global)
	}
}

// compareTiers orders tiers as Felix's TierLess: tiers with a Tier object
// first, then by order with no order last, then by name.
func compareTiers(a, b *tierInfo) int {
	if a.known != b.known {
		if a.known {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(orderValue(a.order), orderValue(b.order)); c != 0 {
		return c
	}
	return cmp.Compare(a.name, b.name)
}

func orderValue(o *float64) float64 {
	if o == nil {
		return math.Inf(1)
	}
	return *o
}

// withStaged applies staged policies to the enforced ones.
func withStaged(enforced []*Policy, staged []Policy) []*Policy {
	key := func(p *Policy) string { return string(p.Kind.Enforced()) + "/" + p.Namespace + "/" + p.Name }
	out := make([]*Policy, 0, len(enforced)+len(staged))
	replaced := map[string]bool{}
	for i := range staged {
		replaced[key(&staged[i])] = true
	}
	for _, p := range enforced {
		if !replaced[key(p)] {
			out = append(out, p)
		}
	}
	for i := range staged {
		if staged[i].StagedAction != StagedDelete {
			out = append(out, &staged[i])
		}
	}
	return out
}

// Notes returns what the index noticed about its input that may surprise
// its reader (a tier without Tier object, for example).
func (ix *Index) Notes() []string { return ix.notes }
