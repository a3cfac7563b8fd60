package policies

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/calico"
)

// Rancher's own project network isolation writes Kubernetes
// NetworkPolicies (np-default, hn-nodes, np-<service>, hp-<pod>, labelled
// cattle.io/creator: norman), and switching it off deletes them one by
// one, in no particular order. Where a namespace's pods reach the default
// tier — always, for a namespace calico-pni does not isolate (opted out,
// exempt), and in calico-pni's tier mode for traffic its walls pass on —
// Rancher's policies select the pods there. While some of them are gone
// and others remain, the pods are still selected but admit less than
// with all of them (hp-<pod> gone while np-default remains cuts the
// internet from host ports) and less than with none (then no policy
// selects the pods, and the namespace's profile allows).
//
// So calico-pni keeps, for each namespace that has Rancher's policies, a
// copy of all of them in the default tier: one GlobalNetworkPolicy
// (handover), at the order Calico gives Kubernetes NetworkPolicies,
// selecting the pods Rancher's policies select, each rule pinned to the
// pods of its own policy. It adds nothing while Rancher's policies are
// all there, keeps everything they allowed while Rancher deletes them,
// and goes, in one write, once none is left: the namespace passes from
// "Rancher's isolation beside calico-pni" to "calico-pni alone" at once.
// The copy never shrinks while a Rancher policy remains (package plan
// merges the live copy with the desired one).

// handover returns the copies of Rancher's policies.
func (g *generator) handover(snap Snapshot) []calico.Policy {
	if len(snap.RancherPolicies) == 0 {
		return nil
	}
	byNamespace := map[string][]*networkingv1.NetworkPolicy{}
	for _, np := range snap.RancherPolicies {
		byNamespace[np.Namespace] = append(byNamespace[np.Namespace], np)
	}
	var out []calico.Policy
	for _, ns := range slices.Sorted(maps.Keys(byNamespace)) {
		nps := byNamespace[ns]
		slices.SortFunc(nps, func(a, b *networkingv1.NetworkPolicy) int { return cmp.Compare(a.Name, b.Name) })
		if p, ok := handoverPolicy(ns, nps); ok {
			out = append(out, p)
		}
	}
	return out
}

// HandoverName is the name of the copy of a namespace's Rancher policies.
func HandoverName(namespace string) string {
	return policyName(NamePrefix+"rancher-", namespace, 0)
}

// handoverPolicy copies a namespace's Rancher policies into one policy.
func handoverPolicy(ns string, nps []*networkingv1.NetworkPolicy) (calico.Policy, bool) {
	here := calico.Eq(calico.NameLabel, ns)
	spec := calico.GlobalNetworkPolicySpec{Order: order(calico.KubernetesOrder), NamespaceSelector: here.String()}
	var selects []string
	types := map[calico.PolicyType]bool{}
	for _, np := range nps {
		s, _ := calico.KubernetesSpec(np)
		for _, t := range s.Types {
			types[t] = true
		}
		selects = append(selects, s.Selector)
		spec.Ingress = append(spec.Ingress, pinRules(s.Ingress, s.Selector, ns, true)...)
		spec.Egress = append(spec.Egress, pinRules(s.Egress, s.Selector, ns, false)...)
	}
	spec.Selector = OrSelectors(selects)
	for _, t := range []calico.PolicyType{calico.Ingress, calico.Egress} {
		if types[t] {
			spec.Types = append(spec.Types, t)
		}
	}
	if len(spec.Types) == 0 {
		return calico.Policy{}, false
	}
	return calico.Policy{
		Name:  HandoverName(ns),
		Class: calico.ClassHandover,
		Description: fmt.Sprintf("A copy of Rancher's own project isolation policies of namespace %s, kept while they exist and until the last of them is gone, so that switching Rancher's isolation off changes nothing until then.",
			ns),
		Spec: spec,
	}, true
}

// pinRules scopes a namespaced policy's rules to a GlobalNetworkPolicy: a
// peer selected by pods alone is in the policy's namespace, and each rule
// applies only to the pods its own policy selects.
func pinRules(rules []calico.Rule, podSelector, ns string, ingress bool) []calico.Rule {
	here := calico.Eq(calico.NameLabel, ns).String()
	out := make([]calico.Rule, 0, len(rules))
	for _, r := range rules {
		peer, own := &r.Source, &r.Destination
		if !ingress {
			peer, own = &r.Destination, &r.Source
		}
		if peer.Selector != "" && peer.NamespaceSelector == "" {
			peer.NamespaceSelector = here
		}
		own.Selector = podSelector
		own.NamespaceSelector = here
		out = append(out, r)
	}
	return out
}

// OrSelectors joins selectors with ||, each once, in a stable order, so
// that joining a join with one of its parts gives the join again.
func OrSelectors(selectors []string) string {
	var parts []string
	for _, s := range selectors {
		parsed, err := calico.ParseSelector(s)
		if err != nil {
			parts = append(parts, "("+s+")")
			continue
		}
		for _, term := range calico.OrTerms(parsed) {
			parts = append(parts, "("+term.String()+")")
		}
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	if len(parts) == 1 {
		return strings.TrimSuffix(strings.TrimPrefix(parts[0], "("), ")")
	}
	return strings.Join(parts, " || ")
}

// noteRancher names, in each namespace's status, Rancher's policies there.
func (g *generator) noteRancher(snap Snapshot, byName map[string]*nsInfo) {
	names := map[string][]string{}
	for _, np := range snap.RancherPolicies {
		names[np.Namespace] = append(names[np.Namespace], np.Name)
	}
	g.d.RancherNamespaces = len(names)
	for ns, list := range names {
		if info, ok := byName[ns]; ok {
			slices.Sort(list)
			info.state.Status.Rancher = list
		}
	}
}
