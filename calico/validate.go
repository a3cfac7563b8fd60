package calico

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate checks a policy the way Calico would, and more strictly where
// calico-pni's own rules are stricter. It returns every problem found, each
// naming the policy and the field. A policy that fails is never written.
func Validate(p Policy) error {
	v := &validator{}
	v.policy(p)
	if len(v.errs) == 0 {
		return nil
	}
	kind := "GlobalNetworkPolicy"
	if p.Namespace != "" {
		kind = "NetworkPolicy " + p.Namespace + "/"
	} else {
		kind += " "
	}
	return fmt.Errorf("%s%s is invalid: %w", kind, p.Name, errors.Join(v.errs...))
}

type validator struct{ errs []error }

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

func (v *validator) policy(p Policy) {
	// Calico takes the tier from the text before the first dot in some
	// versions, so a logical name must be a plain DNS-1123 label.
	if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
		v.fail("metadata.name", "%q: %s", p.Name, strings.Join(errs, "; "))
	}
	if p.Namespace != "" {
		if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
			v.fail("metadata.namespace", "%q: %s", p.Namespace, strings.Join(errs, "; "))
		}
	}
	if p.Class != ClassAllow && p.Class != ClassBaseline && p.Class != ClassHold && p.Class != ClassHandover {
		v.fail("class", "must be %q, %q, %q or %q", ClassAllow, ClassBaseline, ClassHold, ClassHandover)
	}
	s := p.Spec
	if s.Tier != "" {
		if errs := validation.IsDNS1123Label(s.Tier); len(errs) > 0 || s.Tier == DefaultTier {
			v.fail("spec.tier", "%q: leave it unset for the default tier, else name a tier (a DNS-1123 label)", s.Tier)
		}
	}
	if s.Order == nil {
		v.fail("spec.order", "must be set: without it the policy is applied last")
	}
	switch {
	case p.Staged && s.StagedAction != StagedSet:
		v.fail("spec.stagedAction", "%q: calico-pni stages policies as they would be enforced (Set)", s.StagedAction)
	case !p.Staged && s.StagedAction != "":
		v.fail("spec.stagedAction", "is for staged policies only")
	}
	v.types(s)
	if p.Namespace == "" {
		// An empty selector and namespaceSelector select every workload
		// and every host endpoint in the cluster.
		if s.Selector == "" && s.NamespaceSelector == "" {
			v.fail("spec", "selector and namespaceSelector are both empty, which selects every endpoint, host endpoints included")
		}
		v.selector("spec.namespaceSelector", s.NamespaceSelector)
	} else {
		if s.NamespaceSelector != "" || s.DoNotTrack || s.PreDNAT || s.ApplyOnForward {
			v.fail("spec", "a namespaced NetworkPolicy has no namespaceSelector, doNotTrack, preDNAT or applyOnForward")
		}
	}
	v.selector("spec.selector", s.Selector)
	v.selector("spec.serviceAccountSelector", s.ServiceAccountSelector)
	if s.DoNotTrack || s.PreDNAT || s.ApplyOnForward {
		v.fail("spec", "doNotTrack, preDNAT and applyOnForward apply to host endpoints, which calico-pni never selects")
	}
	for i, r := range s.Ingress {
		v.rule(fmt.Sprintf("spec.ingress[%d]", i), r, Ingress, p.Namespace == "")
	}
	for i, r := range s.Egress {
		v.rule(fmt.Sprintf("spec.egress[%d]", i), r, Egress, p.Namespace == "")
	}
}

func (v *validator) types(s GlobalNetworkPolicySpec) {
	// Without types, Felix enforces both directions on a policy written to
	// the v1 CRD, whatever rules it holds.
	if len(s.Types) == 0 {
		v.fail("spec.types", "must be set (Ingress, Egress or both)")
	}
	seen := map[PolicyType]bool{}
	for _, t := range s.Types {
		if t != Ingress && t != Egress {
			v.fail("spec.types", "%q is neither Ingress nor Egress", t)
		}
		if seen[t] {
			v.fail("spec.types", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if len(s.Ingress) > 0 && !seen[Ingress] {
		v.fail("spec.ingress", "has rules but types does not list Ingress, so they would be ignored")
	}
	if len(s.Egress) > 0 && !seen[Egress] {
		v.fail("spec.egress", "has rules but types does not list Egress, so they would be ignored")
	}
	if len(s.Ingress) > 1024 || len(s.Egress) > 1024 {
		v.fail("spec", "Calico accepts at most 1024 rules in each direction")
	}
}

func (v *validator) selector(field, text string) {
	if text == "" {
		return
	}
	if len(text) > MaxSelectorLength {
		v.fail(field, "selector is %d characters long; Calico accepts at most %d", len(text), MaxSelectorLength)
		return
	}
	s, err := ParseSelector(text)
	if err != nil {
		v.fail(field, "%v", err)
		return
	}
	if err := s.check(); err != nil {
		v.fail(field, "%v", err)
	}
}

func (v *validator) rule(field string, r Rule, dir PolicyType, global bool) {
	switch r.Action {
	case Allow, Deny, Log, Pass:
	default:
		v.fail(field+".action", "%q is not one of Allow, Deny, Log, Pass", r.Action)
	}
	ports := len(r.Source.Ports) + len(r.Source.NotPorts) + len(r.Destination.Ports) + len(r.Destination.NotPorts)
	if ports > 0 && (r.Protocol == nil || !r.Protocol.SupportsPorts()) {
		v.fail(field+".protocol", "ports need protocol TCP, UDP or SCTP")
	}
	if r.ICMP != nil || r.NotICMP != nil {
		if r.Protocol == nil || (r.Protocol.Name != "ICMP" && r.Protocol.Name != "ICMPv6") {
			v.fail(field+".icmp", "icmp needs protocol ICMP or ICMPv6")
		}
	}
	if r.HTTP != nil {
		v.fail(field+".http", "application-layer rules need Calico's application layer policy; calico-pni does not write them")
	}
	if r.IPVersion != nil && *r.IPVersion != 4 && *r.IPVersion != 6 {
		v.fail(field+".ipVersion", "must be 4 or 6")
	}
	family := 0
	if r.IPVersion != nil {
		family = *r.IPVersion
	}
	v.entity(field+".source", r.Source, &family, global)
	v.entity(field+".destination", r.Destination, &family, global)
	if r.Source.Services != nil && dir == Egress {
		v.fail(field+".source.services", "not allowed in an egress rule")
	}
	if r.Destination.Services != nil && dir == Ingress {
		v.fail(field+".destination.services", "not allowed in an ingress rule")
	}
}

// entity checks one side of a rule. family carries the IP version seen so
// far in the rule, so that IPv4 and IPv6 nets are never mixed.
func (v *validator) entity(field string, e EntityRule, family *int, global bool) {
	// A list that is present but empty disappears in JSON and the rule then
	// matches everything (rancher#14085): refuse it rather than widen it.
	if e.Nets != nil && len(e.Nets) == 0 {
		v.fail(field+".nets", "is empty; an empty list would match every address")
	}
	if e.Ports != nil && len(e.Ports) == 0 {
		v.fail(field+".ports", "is empty; an empty list would match every port")
	}
	v.nets(field+".nets", e.Nets, family)
	v.nets(field+".notNets", e.NotNets, family)
	v.selector(field+".selector", e.Selector)
	v.selector(field+".notSelector", e.NotSelector)
	v.selector(field+".namespaceSelector", e.NamespaceSelector)
	for i, p := range e.Ports {
		v.port(fmt.Sprintf("%s.ports[%d]", field, i), p)
	}
	for i, p := range e.NotPorts {
		v.port(fmt.Sprintf("%s.notPorts[%d]", field, i), p)
	}
	if sa := e.ServiceAccounts; sa != nil {
		if len(sa.Names) == 0 && sa.Selector == "" {
			v.fail(field+".serviceAccounts", "names or selector must be set")
		}
		v.selector(field+".serviceAccounts.selector", sa.Selector)
	}
	if svc := e.Services; svc != nil {
		if svc.Name == "" {
			v.fail(field+".services.name", "must be set")
		}
		if global && svc.Namespace == "" {
			v.fail(field+".services.namespace", "must be set in a GlobalNetworkPolicy")
		}
		if e.Selector != "" || e.NotSelector != "" || e.NamespaceSelector != "" || e.ServiceAccounts != nil ||
			len(e.Nets) > 0 || len(e.NotNets) > 0 || len(e.Ports) > 0 || len(e.NotPorts) > 0 {
			v.fail(field+".services", "cannot be combined with selectors, service accounts, nets or ports")
		}
	}
}

func (v *validator) nets(field string, nets []string, family *int) {
	for i, n := range nets {
		prefix, err := netip.ParsePrefix(n)
		if err != nil {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "%q is not a CIDR such as 10.0.0.1/32 or fd00::1/128", n)
			continue
		}
		if prefix != prefix.Masked() {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "%q has host bits set; write %s", n, prefix.Masked())
		}
		f := 4
		if prefix.Addr().Is6() {
			f = 6
		}
		if *family == 0 {
			*family = f
		} else if *family != f {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "%q mixes IPv%d into a rule for IPv%d; use one rule per IP version", n, f, *family)
		}
	}
}

func (v *validator) port(field string, p Port) {
	switch {
	case p.Name != "":
		if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
			v.fail(field, "%q: %s", p.Name, strings.Join(errs, "; "))
		}
	case p.Min == 0 || p.Max == 0:
		v.fail(field, "port 0 is not a port")
	case p.Min > p.Max:
		v.fail(field, "range %s runs backwards", p)
	}
}
