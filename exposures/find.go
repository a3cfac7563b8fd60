// Package exposures finds the policies, not written by calico-pni, that
// open the walls around isolated namespaces: an Allow rule that lets in
// namespaces of other projects, or addresses outside the cluster (by
// nets, or through the network sets a rule selector selects, whose
// addresses Felix puts into the rule's IP set), or lets an isolated
// namespace's pods out to them. It is pure: a model of the
// namespaces and the users' policies goes in, each isolated namespace's
// exposures come out. An exposure is information for the cluster's admin,
// not an error: the namespace stays isolated, its status lists what opens
// it.
//
// Which policies can open a wall follows Calico's evaluation order: a
// policy is read before the wall's end-of-tier deny when its tier comes
// before calico-pni's walls or is the same tier. In default-tier mode the
// walls are in the default tier, where every Kubernetes NetworkPolicy and
// most Calico policies are, so any of their Allow rules counts; in tier
// mode only policies of tiers ordered before calico-pni's tier can (an
// admin's AdminNetworkPolicy tier, for example), since the wall denies
// before the default tier is reached. A Pass or Deny rule never opens a
// wall.
//
// The analysis is static and deliberately simple: a rule's own source (or
// destination) is read; rules earlier in the same policy that might decide
// first are not, and a pod selector is assumed to select some pod. It may
// name a policy that in practice opens nothing; it does not miss one that
// opens a wall by its peers.
package exposures

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// Namespace is a namespace as the analysis reads it.
type Namespace struct {
	Name string
	// Labels are the namespace's labels, calico-pni's included.
	Labels map[string]string
	// Project is the namespace's Rancher project ("" for none).
	Project string
	// Isolated is true when calico-pni isolates the namespace.
	Isolated bool
}

// Input is everything the analysis reads.
type Input struct {
	Namespaces    []Namespace
	SystemProject string
	// Policies are the enforced policies calico-pni did not write, in
	// Calico's form (Kubernetes NetworkPolicies converted).
	Policies []*evaluator.Policy
	// TierOrders gives each tier's order (nil: last).
	TierOrders map[string]*float64
	// WallTier is the tier calico-pni's walls are in: "default", or its
	// own tier.
	WallTier string
	// NetworkSets are the cluster's GlobalNetworkSets and NetworkSets,
	// whose addresses rule selectors also select.
	NetworkSets []evaluator.NetworkSet
	// HostAddresses are the nodes' host-network addresses that
	// calico-pni's walls admit themselves (pni-allow-from-host-network,
	// hostNetwork.enabled); nil when they admit none. A rule that admits
	// only these, as Rancher's hn-nodes does, opens nothing.
	HostAddresses []netip.Addr
}

// Exposure is one rule of a policy that opens a namespace's wall.
type Exposure = policies.Exposure

// Find returns the exposures of each isolated namespace, by name, sorted.
func Find(in Input) map[string][]Exposure {
	a := newAnalysis(in)
	out := map[string][]Exposure{}
	for _, p := range in.Policies {
		if p.Managed || p.Kind.Staged() || !a.beforeWall(p) {
			continue
		}
		targets := a.appliesTo(p)
		if len(targets) == 0 {
			continue
		}
		note := rancherNote(p)
		for _, dir := range []calico.PolicyType{calico.Ingress, calico.Egress} {
			if !p.Governs(dir) {
				continue
			}
			rules := p.Spec.Ingress
			if dir == calico.Egress {
				rules = p.Spec.Egress
			}
			for i, r := range rules {
				if r.Action != calico.Allow {
					continue
				}
				peer := r.Source
				if dir == calico.Egress {
					peer = r.Destination
				}
				sets := a.networkSets(p, dir, i)
				for _, ns := range targets {
					if opens := a.opens(p, ns, peer, dir, sets); opens != "" {
						out[ns.Name] = appendOnce(out[ns.Name], Exposure{
							Kind: p.FlowLogKind(), Namespace: p.Namespace, Name: p.FlowLogName(),
							Direction: strings.ToLower(string(dir)), Opens: withNote(opens, note),
						})
					}
				}
			}
		}
	}
	for name, list := range out {
		slices.SortFunc(list, func(a, b Exposure) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
				cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Opens, b.Opens))
		})
		out[name] = list
	}
	return out
}

func appendOnce(list []Exposure, e Exposure) []Exposure {
	if slices.Contains(list, e) {
		return list
	}
	return append(list, e)
}

// analysis holds what Find looks up often. It indexes namespaces only by
// the label keys the policies' namespace selectors read, so that a
// cluster with no policies of its users costs almost nothing.
type analysis struct {
	in     Input
	byName map[string]*Namespace
	// byLabel indexes namespaces by label key and value; matched caches
	// the namespaces a selector matches, by its text; withName caches a
	// namespace's labels with the name label Calico adds.
	byLabel  map[string]map[string][]*Namespace
	matched  map[string][]*Namespace
	withName map[*Namespace]map[string]string
	// parsed caches selectors by text: users' policies repeat a few.
	parsed map[string]parsedSelector
	// sets are the network sets with the labels rule selectors see.
	sets []labelledSet
	// hosts holds Input.HostAddresses.
	hosts map[netip.Addr]bool
}

// labelledSet is a network set, its name as the exposures print it, and
// the labels Felix matches rule selectors against.
type labelledSet struct {
	name   string
	labels map[string]string
}

type parsedSelector struct {
	sel calico.Selector
	err error
}

// parse reads a selector, once per text.
func (a *analysis) parse(text string) (calico.Selector, error) {
	if p, ok := a.parsed[text]; ok {
		return p.sel, p.err
	}
	sel, err := calico.ParseSelector(text)
	a.parsed[text] = parsedSelector{sel, err}
	return sel, err
}

func newAnalysis(in Input) *analysis {
	a := &analysis{in: in, byName: make(map[string]*Namespace, len(in.Namespaces)), byLabel: map[string]map[string][]*Namespace{},
		matched: map[string][]*Namespace{}, withName: map[*Namespace]map[string]string{}, parsed: map[string]parsedSelector{}}
	for _, h := range in.HostAddresses {
		if a.hosts == nil {
			a.hosts = map[netip.Addr]bool{}
		}
		a.hosts[h.Unmap()] = true
	}
	keys := map[string]bool{}
	read := func(text string) {
		if s, err := a.parse(text); err == nil {
			for _, k := range calico.Keys(s) {
				keys[k] = true
			}
		}
	}
	for _, p := range in.Policies {
		read(p.Spec.NamespaceSelector)
		for _, r := range p.Spec.Ingress {
			read(r.Source.NamespaceSelector)
		}
		for _, r := range p.Spec.Egress {
			read(r.Destination.NamespaceSelector)
		}
	}
	for i := range in.Namespaces {
		ns := &in.Namespaces[i]
		a.byName[ns.Name] = ns
	}
	for _, set := range in.NetworkSets {
		var ns *evaluator.Namespace
		if n := a.byName[set.Namespace]; n != nil {
			ns = &evaluator.Namespace{Name: n.Name, Labels: n.Labels}
		}
		name := set.Name
		if set.Namespace != "" {
			name = set.Namespace + "/" + name
		}
		nets := make([]string, len(set.Nets))
		for j, p := range set.Nets {
			nets[j] = p.String()
		}
		a.sets = append(a.sets, labelledSet{name: name + " (" + shortList(nets, 3) + ")", labels: evaluator.NetworkSetLabels(set, ns)})
	}
	for i := range in.Namespaces {
		ns := &in.Namespaces[i]
		for k := range keys {
			v, ok := ns.Labels[k]
			if k == calico.NameLabel {
				v, ok = ns.Name, true
			}
			if !ok {
				continue
			}
			if a.byLabel[k] == nil {
				a.byLabel[k] = map[string][]*Namespace{}
			}
			a.byLabel[k][v] = append(a.byLabel[k][v], ns)
		}
	}
	return a
}

// labels are a namespace's labels as a namespaceSelector sees them, with
// the name label Calico adds.
func (a *analysis) labels(ns *Namespace) map[string]string {
	if l, ok := a.withName[ns]; ok {
		return l
	}
	out := maps.Clone(ns.Labels)
	if out == nil {
		out = map[string]string{}
	}
	out[calico.NameLabel] = ns.Name
	a.withName[ns] = out
	return out
}

// beforeWall reports whether Calico reads p before the walls' end-of-tier
// deny: its tier comes before the wall's tier, or is that tier.
func (a *analysis) beforeWall(p *evaluator.Policy) bool {
	tier, wall := p.TierName(), cmp.Or(a.in.WallTier, evaluator.DefaultTier)
	if tier == wall {
		return true
	}
	to, wo := a.in.TierOrders[tier], a.in.TierOrders[wall]
	switch {
	case to == nil:
		return false
	case wo == nil:
		return true
	}
	return *to < *wo || (*to == *wo && tier < wall)
}

// appliesTo returns the isolated namespaces whose pods p may select.
func (a *analysis) appliesTo(p *evaluator.Policy) []*Namespace {
	if p.Namespace != "" {
		if ns := a.byName[p.Namespace]; ns != nil && ns.Isolated {
			return []*Namespace{ns}
		}
		return nil
	}
	sel, err := a.parse(p.Spec.NamespaceSelector)
	if err != nil {
		return nil
	}
	var out []*Namespace
	for _, ns := range a.match(sel) {
		if ns.Isolated {
			out = append(out, ns)
		}
	}
	// A pod selector that names the namespace narrows it further.
	if ps, err := a.parse(p.Spec.Selector); err == nil {
		for _, eq := range calico.RequiredEqs(ps) {
			if eq[0] == calico.NamespaceLabel {
				out = slices.DeleteFunc(out, func(ns *Namespace) bool { return ns.Name != eq[1] })
			}
		}
	}
	return out
}

// match returns the namespaces a namespace selector matches, looking up
// the namespaces that carry its required labels first.
func (a *analysis) match(sel calico.Selector) []*Namespace {
	key := sel.String()
	if m, ok := a.matched[key]; ok {
		return m
	}
	candidates := a.in.Namespaces
	var fromIndex []*Namespace
	eqs := calico.RequiredEqs(sel)
	for i, eq := range eqs {
		list := a.byLabel[eq[0]][eq[1]]
		if i == 0 || len(list) < len(fromIndex) {
			fromIndex = list
		}
	}
	var out []*Namespace
	if len(eqs) > 0 {
		for _, ns := range fromIndex {
			if sel.Matches(a.labels(ns)) {
				out = append(out, ns)
			}
		}
	} else {
		for i := range candidates {
			if ns := &candidates[i]; sel.Matches(a.labels(ns)) {
				out = append(out, ns)
			}
		}
	}
	a.matched[key] = out
	return out
}

// networkSets names the network sets that rule index of p selects as its
// peer, sorted: Felix puts their addresses into the rule's IP set
// (felix/labelindex), whatever namespace or project holds them.
func (a *analysis) networkSets(p *evaluator.Policy, dir calico.PolicyType, index int) []string {
	if len(a.sets) == 0 {
		return nil
	}
	sel, err := evaluator.PeerSelector(p, dir, index)
	if err != nil || sel == nil {
		return nil
	}
	var out []string
	for _, s := range a.sets {
		if sel.Matches(s.labels) {
			out = append(out, s.name)
		}
	}
	slices.Sort(out)
	return out
}

// opens says what an Allow rule's peer lets into (or out of) ns beyond
// what calico-pni's walls allow, or "" if nothing. sets are the network
// sets the peer selects.
func (a *analysis) opens(p *evaluator.Policy, ns *Namespace, peer calico.EntityRule, dir calico.PolicyType, sets []string) string {
	from := "from"
	if dir == calico.Egress {
		from = "to"
	}
	hasEndpointMatch := peer.Selector != "" || peer.NamespaceSelector != "" || peer.ServiceAccounts != nil || peer.Services != nil
	switch {
	case !hasEndpointMatch && len(peer.Nets) == 0 && peer.NotSelector == "":
		return from + " anywhere"
	case !hasEndpointMatch && a.onlyHostAddresses(peer, dir):
		return ""
	case !hasEndpointMatch && len(peer.Nets) > 0:
		return fmt.Sprintf("%s addresses %s", from, shortList(peer.Nets, 3))
	case !hasEndpointMatch:
		return from + " outside the cluster"
	case peer.Services != nil:
		if svcNS := a.byName[peer.Services.Namespace]; svcNS != nil && a.outside(ns, svcNS) {
			return fmt.Sprintf("%s the Service %s/%s", from, peer.Services.Namespace, peer.Services.Name)
		}
		return ""
	}
	var peers []*Namespace
	switch {
	case peer.NamespaceSelector != "":
		sel, err := a.parse(peer.NamespaceSelector)
		if err != nil {
			return ""
		}
		peers = a.match(sel)
	case p.Namespace != "":
		// A selector alone in a namespaced policy stays in its namespace,
		// whose pods are inside the wall; its network sets are not.
	default:
		// A selector alone in a GlobalNetworkPolicy reaches pods of every
		// namespace.
		peers = slices.Collect(maps.Values(a.byName))
	}
	projects := map[string]bool{}
	unassigned := 0
	for _, other := range peers {
		if !a.outside(ns, other) {
			continue
		}
		if other.Project == "" {
			unassigned++
		} else {
			projects[other.Project] = true
		}
	}
	var parts []string
	if len(projects) > 0 {
		parts = append(parts, "namespaces of other projects ("+shortList(slices.Sorted(maps.Keys(projects)), 3)+")")
	}
	if unassigned > 0 {
		parts = append(parts, fmt.Sprintf("%d namespaces in no project", unassigned))
	}
	switch len(sets) {
	case 0:
	case 1:
		parts = append(parts, "the addresses of network set "+sets[0])
	default:
		parts = append(parts, "the addresses of network sets "+shortList(sets, 3))
	}
	if len(parts) == 0 {
		return ""
	}
	return from + " " + strings.Join(parts, " and ")
}

// outside reports whether traffic with other crosses ns's wall: other is
// in another project (or none), and not the System project, which
// calico-pni lets in itself.
func (a *analysis) outside(ns, other *Namespace) bool {
	if other.Name == ns.Name {
		return false
	}
	if ns.Project != "" && other.Project == ns.Project {
		return false
	}
	return other.Project == "" || other.Project != a.in.SystemProject
}

func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
