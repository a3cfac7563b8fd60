package policies

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

// maxRules is the most rules Calico accepts in one direction of a policy;
// longer lists are split over several policies.
const maxRules = 1024

// fromHostNetwork lets isolated namespaces accept traffic from every
// node's host network, as Rancher's hn-nodes policy does, so that a
// hostNetwork ingress controller on another node reaches its backends. On
// Calico that traffic comes from the tunnel addresses (rancher#33979,
// #38490: Rancher once listed podCIDR addresses instead and users got 504s)
// or, without encapsulation, from the node IP; both are listed. No
// addresses, no rule: never a rule without a source (rancher#14085).
//
// The addresses are also where NodePort traffic forwarded between nodes
// appears to come from, after kube-proxy's SNAT: see docs/policies.md.
func (g *generator) fromHostNetwork(snap Snapshot) built {
	var addrs []netip.Prefix
	for _, n := range snap.Nodes {
		for _, a := range n.HostAddresses {
			addrs = append(addrs, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	v4, v6 := splitFamilies(addrs)
	ingress := []calico.Rule{}
	for _, nets := range [][]string{v4, v6} {
		if len(nets) > 0 {
			ingress = append(ingress, calico.Rule{Action: calico.Allow, Source: calico.EntityRule{Nets: nets}})
		}
	}
	return g.allow("allow-from-host-network", false,
		"Isolated pods accept traffic from every node's host network (Calico tunnel addresses and node IPs), as Rancher's hn-nodes policy does.",
		g.isolated(), nil, ingress, nil)
}

// outsideSource matches traffic that does not come from a pod: clients
// outside the cluster, and traffic kube-proxy has SNATed to a node
// address. Pods of other projects connecting directly are not matched
// (rancher#49430).
//
// It excludes pods by the label Calico gives every Kubernetes workload
// endpoint (projectcalico.org/orchestrator: k8s), the one Calico's own
// conversion of a NetworkPolicy's podSelector requires, and not by
// all(): Felix puts the addresses of network sets into the IP sets of
// rule selectors (felix/labelindex), so `notSelector: all()` would also
// exclude every address a GlobalNetworkSet, or any tenant's NetworkSet,
// covers, and a network set of outside addresses would silently switch
// the NodePort, LoadBalancer and host-port exceptions off for them.
// Network sets carry no orchestrator label (the NetworkSet update
// processor adds projectcalico.org/namespace only). Host endpoints carry
// none either, so traffic from a node's host endpoint also counts as
// outside here; the host network is admitted on every port anyway
// (allow-from-host-network).
var outsideSource = calico.EntityRule{NotSelector: calico.Eq(calico.OrchestratorLabel, "k8s").String()}

// externalServices lets traffic from outside the cluster reach the pods
// behind NodePort and LoadBalancer Services and Services with externalIPs,
// on their target ports, as Rancher's np-<service> policies do (which
// allowed every source, pods of other projects included).
func (g *generator) externalServices(snap Snapshot, byName map[string]*nsInfo) []built {
	services := slices.Clone(snap.ExternalServices)
	slices.SortFunc(services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var rules []calico.Rule
	var targets []string // the namespace of each rule
	for _, svc := range services {
		info := byName[svc.Namespace]
		if info == nil || !g.member(info) {
			continue
		}
		if len(svc.Selector) == 0 {
			info.state.Status.AddProblem(fmt.Sprintf("service %s is reachable from outside the cluster but has no selector, so calico-pni cannot tell its pods; allow them with a policy of your own", svc.Name))
			continue
		}
		for _, r := range portRules(svc.Namespace, calico.MatchLabels(svc.Selector), svc.Ports) {
			rules = append(rules, r)
			targets = append(targets, svc.Namespace)
		}
	}
	return g.chunked("allow-external-services",
		"Traffic from outside the cluster reaches the pods behind NodePort and LoadBalancer Services and Services with externalIPs, on their target ports; pods of other projects stay blocked.",
		rules, targets)
}

// volatileLabels differ between pods of one workload; left out so that a
// workload's pods share one rule.
var volatileLabels = []string{"pod-template-hash", "controller-revision-hash", "pod-template-generation", "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index"}

// hostPorts does the same for pods with host ports, as Rancher's hp-<pod>
// policies do. The pods are selected by their own labels: Rancher labelled
// user pods to select them, which broke ingress-nginx (rancher#26677), so
// calico-pni never changes a pod.
func (g *generator) hostPorts(snap Snapshot, byName map[string]*nsInfo) []built {
	type group struct {
		namespace string
		selects   calico.Selector
		ports     []ServicePort
	}
	groups := map[string]*group{}
	for _, pod := range snap.HostPortPods {
		info := byName[pod.Namespace]
		if info == nil || !g.member(info) {
			continue
		}
		labels := maps.Clone(pod.Labels)
		for _, l := range volatileLabels {
			delete(labels, l)
		}
		if len(labels) == 0 {
			info.state.Status.AddProblem(fmt.Sprintf("pod %s binds host ports but has no labels, so calico-pni cannot select it without changing it; label its workload", pod.Name))
			continue
		}
		sel := calico.MatchLabels(labels)
		key := pod.Namespace + "/" + sel.String()
		if groups[key] == nil {
			groups[key] = &group{namespace: pod.Namespace, selects: sel}
		}
		groups[key].ports = append(groups[key].ports, pod.Ports...)
	}
	var rules []calico.Rule
	var targets []string
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		gr := groups[key]
		for _, r := range portRules(gr.namespace, gr.selects, gr.ports) {
			rules = append(rules, r)
			targets = append(targets, gr.namespace)
		}
	}
	return g.chunked("allow-host-ports",
		"Traffic from outside the cluster reaches pods with host ports on those ports, selected by the pods' own labels; pods of other projects stay blocked.",
		rules, targets)
}

// portRules allows outside traffic to the selected pods of a namespace on
// the given ports, one rule per protocol.
func portRules(namespace string, pods calico.Selector, ports []ServicePort) []calico.Rule {
	byProto := map[string][]calico.Port{}
	for _, p := range ports {
		byProto[p.Protocol] = append(byProto[p.Protocol], p.TargetPort)
	}
	var rules []calico.Rule
	for _, proto := range slices.Sorted(maps.Keys(byProto)) {
		list := byProto[proto]
		slices.SortFunc(list, func(a, b calico.Port) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Min, b.Min), cmp.Compare(a.Max, b.Max))
		})
		list = slices.Compact(list)
		rules = append(rules, calico.Rule{
			Action:   calico.Allow,
			Protocol: calico.ProtocolFor(calico.Protocol{Name: proto}),
			Source:   outsideSource,
			Destination: calico.EntityRule{
				NamespaceSelector: calico.Eq(calico.NameLabel, namespace).String(),
				Selector:          pods.String(),
				Ports:             list,
			},
		})
	}
	return rules
}

// chunked spreads ingress rules over policies of at most maxRules rules:
// name, name-2, name-3...; no rules, no policy. targets[i] is the namespace
// rule i lets traffic into.
func (g *generator) chunked(name, description string, rules []calico.Rule, targets []string) []built {
	var out []built
	for i := 0; i < len(rules); i += maxRules {
		end := min(i+maxRules, len(rules))
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s-%d", name, i/maxRules+1)
		}
		b := g.allow(n, false, description, g.isolated(), nil, rules[i:end], nil)
		b.only = map[string]bool{}
		for _, ns := range targets[i:end] {
			b.only[ns] = true
		}
		out = append(out, b)
	}
	return out
}

// internet lets pods of isolated namespaces with the internet label send
// traffic outside the cluster: anywhere but the excluded ranges (pod and
// service ranges, link-local) and the nodes, so that they reach external
// APIs while staying isolated from other projects inside (rancher#38518).
func (g *generator) internet(snap Snapshot) built {
	var excluded []netip.Prefix
	for _, cidr := range g.cfg.Internet.ExcludeCIDRs {
		excluded = append(excluded, netip.MustParsePrefix(cidr))
	}
	for _, n := range snap.Nodes {
		for _, a := range slices.Concat(n.Addresses, n.HostAddresses) {
			excluded = append(excluded, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	v4, v6 := splitFamilies(withoutCovered(excluded))
	var egress []calico.Rule
	for _, fam := range []struct {
		version  int
		anywhere string
		except   []string
	}{{4, "0.0.0.0/0", v4}, {6, "::/0", v6}} {
		r := calico.Rule{Action: calico.Allow, IPVersion: &fam.version, Destination: calico.EntityRule{Nets: []string{fam.anywhere}}}
		if len(fam.except) > 0 {
			r.Destination.NotNets = fam.except
		}
		egress = append(egress, r)
	}
	label := g.cfg.Internet.Label
	return g.allow("allow-internet", false,
		fmt.Sprintf("Isolated namespaces labelled %s may send traffic outside the cluster: anywhere but the cluster's ranges (internet.excludeCIDRs) and the nodes.", label),
		calico.And(g.isolated(), calico.Has(label)), nil, nil, egress)
}

// usesInternet reports whether an isolated namespace carries the label.
func (g *generator) usesInternet(infos []*nsInfo) bool {
	for _, info := range infos {
		if _, ok := info.ns.Labels[g.cfg.Internet.Label]; ok && g.member(info) {
			return true
		}
	}
	return false
}

// optInOut reads the isolation annotation of a namespace: opt-out
// ("disabled"), opt-in for a namespace in no project ("enabled").
func optInOut(ns Namespace) (value string, problem string) {
	v, ok := ns.Annotations[config.IsolationAnnotation]
	if !ok {
		return "", ""
	}
	switch strings.TrimSpace(v) {
	case config.IsolationDisabled, config.IsolationEnabled:
		return strings.TrimSpace(v), ""
	}
	return "", fmt.Sprintf("annotation %s=%q is ignored: use %q (opt out) or %q (opt in, for a namespace in no project)", config.IsolationAnnotation, v, config.IsolationDisabled, config.IsolationEnabled)
}

// withoutCovered drops prefixes that lie inside another one of the list.
func withoutCovered(prefixes []netip.Prefix) []netip.Prefix {
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int { return cmp.Compare(a.Bits(), b.Bits()) })
	var kept []netip.Prefix
	for _, p := range prefixes {
		covered := false
		for _, k := range kept {
			if k.Bits() <= p.Bits() && k.Contains(p.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, p)
		}
	}
	return kept
}
