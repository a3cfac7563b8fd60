package evaluator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// selector is a parsed selector with what it needs to know of an endpoint.
type selector struct {
	calico.Selector
	// readsNS and readsSA are set when the selector reads namespace or
	// service account labels other than their names.
	readsNS, readsSA bool
}

func newSelector(s calico.Selector) *selector {
	out := &selector{Selector: s}
	for _, k := range calico.Keys(s) {
		switch {
		case k == NamespaceLabelPrefix+calico.NameLabel || k == ServiceAccountLabelPrefix+calico.NameLabel:
		case strings.HasPrefix(k, NamespaceLabelPrefix):
			out.readsNS = true
		case strings.HasPrefix(k, ServiceAccountLabelPrefix):
			out.readsSA = true
		}
	}
	return out
}

// compiledPolicy is a policy ready for evaluation.
type compiledPolicy struct {
	*Policy
	// selects is the endpoint selector Felix evaluates: the policy's
	// selector, namespace scoping and service account selector combined.
	selects *selector
	// invalid says why the policy cannot be used; unmodelled says which of
	// its features the evaluator does not follow.
	invalid, unmodelled string
	// notes say what in the policy does not do what it seems to.
	notes           []string
	ingress, egress []*rule
	tier            *tierInfo
	// pos is the policy's place in evaluation order across all tiers.
	pos int
}

// rules returns the policy's compiled rules for a direction.
func (cp *compiledPolicy) rules(dir calico.PolicyType) []*rule {
	if dir == calico.Egress {
		return cp.egress
	}
	return cp.ingress
}

// rule is one compiled rule.
type rule struct {
	policy *compiledPolicy
	dir    calico.PolicyType
	action calico.Action
	// ipVersion is 4, 6 or 0 (any).
	ipVersion             int
	protocol, notProtocol *calico.Protocol
	src, dst              entity
	// unmodelled says which part of the rule the evaluator cannot decide
	// (an HTTP match); invalid says why Calico would reject the rule.
	unmodelled, invalid string
}

// entity is the compiled source or destination of a rule.
type entity struct {
	nets, notNets    []netip.Prefix
	sel, notSel      *selector
	ports, notPorts  []calico.Port
	service          *calico.ServiceMatch
	hasNets, hasPort bool
	// serviceNever is set for a Service match that Felix never matches.
	serviceNever bool
	// byFamily holds nets and notNets split by IP family (IPv4 first),
	// once, for the matching of every connection.
	byFamily [2]familyNets
}

// compilePolicy parses every selector of a policy and rewrites it the way
// libcalico-go hands it to Felix (syncersv1/updateprocessors).
func compilePolicy(p *Policy, version calico.Version) *compiledPolicy {
	cp := &compiledPolicy{Policy: p}
	if p.Invalid != "" {
		cp.invalid = p.Invalid
	}
	sel, err := policySelector(p)
	if err != nil {
		cp.invalid = err.Error()
	} else {
		cp.selects = newSelector(sel)
	}
	if !p.Kind.Namespaced() {
		var flags []string
		if p.Spec.DoNotTrack {
			flags = append(flags, "doNotTrack")
		}
		if p.Spec.PreDNAT {
			flags = append(flags, "preDNAT")
		}
		if p.Spec.ApplyOnForward {
			flags = append(flags, "applyOnForward")
		}
		if len(flags) > 0 {
			cp.unmodelled = fmt.Sprintf("it sets %s, which polices traffic through host endpoints; the evaluator does not model host endpoints", strings.Join(flags, ", "))
		}
	}
	ns := ""
	if p.Kind.Namespaced() {
		ns = p.Namespace
	}
	for i, r := range p.Spec.Ingress {
		cp.ingress = append(cp.ingress, compileRule(cp, calico.Ingress, i, r, ns, version))
	}
	for i, r := range p.Spec.Egress {
		cp.egress = append(cp.egress, compileRule(cp, calico.Egress, i, r, ns, version))
	}
	// Calico refuses a policy with an invalid rule as a whole (the v3 API
	// rejects it; Felix drops what its validation fails).
	for _, r := range append(slices.Clone(cp.ingress), cp.egress...) {
		if r.invalid != "" && cp.invalid == "" {
			cp.invalid = r.invalid
		}
	}
	return cp
}

// policySelector combines what selects a policy's endpoints. A
// GlobalNetworkPolicy: its selector (empty is all()), its
// namespaceSelector on namespace labels (all() meaning any namespace) and
// its serviceAccountSelector on service account labels. A namespaced
// policy: its selector within its namespace, and its service account
// selector (globalnetworkpolicyprocessor.go, networkpolicyprocessor.go).
func policySelector(p *Policy) (calico.Selector, error) {
	parse := func(field, text string) (calico.Selector, error) {
		s, err := calico.ParseSelector(text)
		if err != nil {
			return nil, fmt.Errorf("spec.%s: %v", field, err)
		}
		if calico.UsesGlobal(s) {
			return nil, fmt.Errorf("spec.%s uses global(), which Calico accepts only in the namespaceSelector of a rule", field)
		}
		return s, nil
	}
	sel, err := parse("selector", p.Spec.Selector)
	if err != nil {
		return nil, err
	}
	terms := []calico.Selector{sel}
	if p.Kind.Namespaced() {
		terms = append(terms, calico.Eq(calico.NamespaceLabel, p.Namespace))
	} else if p.Spec.NamespaceSelector != "" {
		ns, err := parse("namespaceSelector", p.Spec.NamespaceSelector)
		if err != nil {
			return nil, err
		}
		terms = append(terms, calico.Prefixed(ns, NamespaceLabelPrefix, calico.Has(calico.NamespaceLabel), nil))
	}
	if p.Spec.ServiceAccountSelector != "" {
		sa, err := parse("serviceAccountSelector", p.Spec.ServiceAccountSelector)
		if err != nil {
			return nil, err
		}
		var all calico.Selector
		if !p.Kind.Namespaced() {
			all = calico.Has(calico.ServiceAccountLabel)
		}
		terms = append(terms, calico.Prefixed(sa, ServiceAccountLabelPrefix, all, nil))
	}
	return calico.And(terms...), nil
}

func compileRule(cp *compiledPolicy, dir calico.PolicyType, index int, r calico.Rule, ns string, version calico.Version) *rule {
	out := &rule{policy: cp, dir: dir, action: r.Action, protocol: r.Protocol, notProtocol: r.NotProtocol}
	field := fmt.Sprintf("spec.%s[%d]", strings.ToLower(string(dir)), index)
	fail := func(format string, args ...any) {
		if out.invalid == "" {
			out.invalid = field + ": " + fmt.Sprintf(format, args...)
		}
	}
	switch r.Action {
	case calico.Allow, calico.Deny, calico.Pass, calico.Log:
	default:
		fail("action %q is not Allow, Deny, Pass or Log", r.Action)
	}
	if r.IPVersion != nil {
		if *r.IPVersion != 4 && *r.IPVersion != 6 {
			fail("ipVersion %d is not 4 or 6", *r.IPVersion)
		}
		out.ipVersion = *r.IPVersion
	}
	if r.HTTP != nil {
		out.unmodelled = field + " matches HTTP requests (Calico's application layer policy), which the evaluator does not model"
	}
	if (r.ICMP != nil || r.NotICMP != nil) && r.Protocol == nil {
		fail("icmp needs protocol ICMP or ICMPv6")
	}
	if refused, ok := ruleRefusal(r, dir, !cp.Kind.Namespaced(), version); ok && out.invalid == "" {
		out.invalid = field + refused.field + ": " + refused.reason
	}
	var err error
	if out.src, err = compileEntity(r.Source, ns); err != nil {
		fail("source: %v", err)
	}
	if out.dst, err = compileEntity(r.Destination, ns); err != nil {
		fail("destination: %v", err)
	}
	for _, side := range []struct {
		name string
		e    *entity
	}{{"source", &out.src}, {"destination", &out.dst}} {
		if svc := side.e.service; ns != "" && svc != nil && svc.Name != "" && svc.Namespace == "" {
			// libcalico-go passes the empty namespace on
			// (updateprocessors/rules.go); Felix then asks its Service
			// index for "/<name>" (felix/calc/rule_scanner.go), whose keys
			// are the EndpointSlices' "<namespace>/<name>"
			// (felix/serviceindex/serviceindex.go): the IP set stays empty.
			side.e.serviceNever = true
			cp.notes = append(cp.notes, fmt.Sprintf("%s %s/%s: %s.%s.services names Service %s without a namespace: Felix looks it up as %q among Services keyed <namespace>/<name> and nothing fills in the policy's namespace, so the rule never matches; write namespace: %s",
				cp.Kind, cp.Namespace, cp.Name, field, side.name, svc.Name, "/"+svc.Name, ns))
		}
	}
	return out
}

// compileEntity builds the matches of a rule's source or destination. The
// selector combines, as libcalico-go's GetEntityRuleSelector does, the
// service accounts, the selector, and the namespaces: the rule's
// namespaceSelector (all() any namespace, global() no namespace), or in a
// namespaced policy the policy's own namespace, applied as soon as any
// selector is used. notSelector is not scoped.
func compileEntity(e calico.EntityRule, ns string) (entity, error) {
	var out entity
	for _, text := range e.Nets {
		p, err := parseNet(text)
		if err != nil {
			return out, err
		}
		out.nets = append(out.nets, p)
	}
	for _, text := range e.NotNets {
		p, err := parseNet(text)
		if err != nil {
			return out, err
		}
		out.notNets = append(out.notNets, p)
	}
	out.hasNets = len(e.Nets) > 0 || len(e.NotNets) > 0
	for i, family := range []int{4, 6} {
		out.byFamily[i] = familyNets{nets: ofFamily(out.nets, family), notNets: ofFamily(out.notNets, family)}
	}
	out.ports, out.notPorts = e.Ports, e.NotPorts
	out.hasPort = len(e.Ports) > 0 || len(e.NotPorts) > 0
	out.service = e.Services

	var terms []calico.Selector
	if e.ServiceAccounts != nil {
		var sa []calico.Selector
		if e.ServiceAccounts.Selector != "" {
			s, err := calico.ParseSelector(e.ServiceAccounts.Selector)
			if err != nil {
				return out, fmt.Errorf("serviceAccounts.selector: %v", err)
			}
			sa = append(sa, calico.Prefixed(s, ServiceAccountLabelPrefix, nil, nil))
		}
		if len(e.ServiceAccounts.Names) > 0 {
			sa = append(sa, calico.In(calico.ServiceAccountLabel, e.ServiceAccounts.Names...))
		}
		if len(sa) > 0 {
			terms = append(terms, calico.And(sa...))
		}
	}
	if e.Selector != "" {
		s, err := calico.ParseSelector(e.Selector)
		if err != nil {
			return out, fmt.Errorf("selector: %v", err)
		}
		if calico.UsesGlobal(s) {
			return out, fmt.Errorf("selector uses global(), which Calico accepts only in a namespaceSelector")
		}
		terms = append(terms, s)
	}
	var nsSel calico.Selector
	if e.NamespaceSelector != "" {
		s, err := calico.ParseSelector(e.NamespaceSelector)
		if err != nil {
			return out, fmt.Errorf("namespaceSelector: %v", err)
		}
		inNamespace := calico.Has(calico.NamespaceLabel)
		nsSel = calico.Prefixed(s, NamespaceLabelPrefix, inNamespace, calico.Not(inNamespace))
	} else if ns != "" {
		nsSel = calico.Eq(calico.NamespaceLabel, ns)
	}
	if nsSel != nil && (len(terms) > 0 || e.NotSelector != "" || e.NamespaceSelector != "") {
		terms = append([]calico.Selector{nsSel}, terms...)
	}
	if len(terms) > 0 {
		out.sel = newSelector(calico.And(terms...))
	}
	if e.NotSelector != "" {
		s, err := calico.ParseSelector(e.NotSelector)
		if err != nil {
			return out, fmt.Errorf("notSelector: %v", err)
		}
		out.notSel = newSelector(s)
	}
	return out, nil
}

// PeerSelector returns the selector Felix matches the peer of a rule
// against (the source of an ingress rule, the destination of an egress
// rule): its selector, service accounts and namespace scoping combined as
// libcalico-go combines them, less what its notSelector matches; nil when
// the rule picks its peer by no selector. It serves questions about which labelled
// objects (network sets) a rule reaches.
func PeerSelector(p *Policy, dir calico.PolicyType, index int) (calico.Selector, error) {
	rules := p.Spec.Ingress
	if dir == calico.Egress {
		rules = p.Spec.Egress
	}
	if index < 0 || index >= len(rules) {
		return nil, fmt.Errorf("%s has no %s rule %d", p, strings.ToLower(string(dir)), index)
	}
	peer := rules[index].Source
	if dir == calico.Egress {
		peer = rules[index].Destination
	}
	ns := ""
	if p.Kind.Namespaced() {
		ns = p.Namespace
	}
	e, err := compileEntity(peer, ns)
	if err != nil || e.sel == nil {
		return nil, err
	}
	if e.notSel != nil {
		return calico.And(e.sel.Selector, calico.Not(e.notSel.Selector)), nil
	}
	return e.sel.Selector, nil
}

// parseNet reads a CIDR or a single address, as Calico accepts both.
func parseNet(text string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(text); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an address", text)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
