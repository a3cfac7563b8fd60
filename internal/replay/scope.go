package replay

import "strings"

// Calico hands Felix policies whose selectors are rewritten into one
// expression over an endpoint's labels, where the namespace's labels
// appear as pcns.<key> and the service account's as pcsa.<key>
// (libcalico-go/lib/backend/syncersv1/updateprocessors: rules.go,
// selectors.go, globalnetworkpolicyprocessor.go, networkpolicyprocessor.go).
// The functions here make the same rewrite, on parsed selectors.

const (
	namespacePrefix      = "pcns."
	serviceAccountPrefix = "pcsa."
	labelNamespace       = "projectcalico.org/namespace"
	labelServiceAccount  = "projectcalico.org/serviceaccount"
	labelOrchestrator    = "projectcalico.org/orchestrator"
	labelName            = "projectcalico.org/name"
)

var (
	hasNamespace      selector = hasSel{labelNamespace}
	hasServiceAccount selector = hasSel{labelServiceAccount}
)

func inNamespace(ns string) selector {
	return cmpSel{key: labelNamespace, op: "==", values: []string{ns}}
}

// prefixed returns sel with every label key prefixed, as Calico's
// PrefixVisitor does (libcalico-go/lib/selector/parser/ast.go).
func prefixed(sel selector, prefix string) selector {
	switch s := sel.(type) {
	case hasSel:
		return hasSel{prefix + s.key}
	case cmpSel:
		s.key = prefix + s.key
		return s
	case notSel:
		return notSel{prefixed(s.operand, prefix)}
	case andSel:
		out := make(andSel, len(s))
		for i, op := range s {
			out[i] = prefixed(op, prefix)
		}
		return out
	case orSel:
		out := make(orSel, len(s))
		for i, op := range s {
			out[i] = prefixed(op, prefix)
		}
		return out
	}
	return sel
}

// replaced returns sel with all() replaced by all and global() by global
// (either may be nil: left as is). Calico replaces the text "all()" and
// "global()" of a rewritten selector the same way.
func replaced(sel selector, all, global selector) selector {
	switch s := sel.(type) {
	case allSel:
		if all != nil {
			return all
		}
	case globalSel:
		if global != nil {
			return global
		}
	case notSel:
		return notSel{replaced(s.operand, all, global)}
	case andSel:
		out := make(andSel, len(s))
		for i, op := range s {
			out[i] = replaced(op, all, global)
		}
		return out
	case orSel:
		out := make(orSel, len(s))
		for i, op := range s {
			out[i] = replaced(op, all, global)
		}
		return out
	}
	return sel
}

// and joins selectors, leaving out nil ones; nil if none is left.
func and(sels ...selector) selector {
	var out andSel
	for _, s := range sels {
		if s != nil {
			out = append(out, s)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// parseOptional parses a selector that may be left out ("": nil).
func parseOptional(text string) (selector, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	return parseSelector(text)
}

// globalPolicySelector is which endpoints a GlobalNetworkPolicy applies
// to (globalnetworkpolicyprocessor.go): its selector, and the namespace
// selector over pcns. labels with all() meaning "in a namespace", and the
// service account selector over pcsa. labels with all() meaning "has a
// service account". Calico replaces all() in the whole expression built
// so far, pod selector included, which changes nothing for a pod: it is
// always in a namespace and has a service account.
func globalPolicySelector(sel, nsSel, saSel string) (selector, error) {
	out, err := parseSelector(sel)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(nsSel) != "" {
		ns, err := parseSelector(nsSel)
		if err != nil {
			return nil, err
		}
		out = replaced(and(out, prefixed(ns, namespacePrefix)), hasNamespace, nil)
	}
	if strings.TrimSpace(saSel) != "" {
		sa, err := parseSelector(saSel)
		if err != nil {
			return nil, err
		}
		out = replaced(and(out, prefixed(sa, serviceAccountPrefix)), hasServiceAccount, nil)
	}
	return out, nil
}

// namespacedPolicySelector is which endpoints a namespaced policy applies
// to (networkpolicyprocessor.go): its selector within its namespace, and
// the service account selector over pcsa. labels (no all() rewrite here).
func namespacedPolicySelector(ns, sel, saSel string) (selector, error) {
	out, err := parseSelector(sel)
	if err != nil {
		return nil, err
	}
	out = and(out, inNamespace(ns))
	if strings.TrimSpace(saSel) != "" {
		sa, err := parseSelector(saSel)
		if err != nil {
			return nil, err
		}
		out = and(out, prefixed(sa, serviceAccountPrefix))
	}
	return out, nil
}

// serviceAccountMatch is an entity rule's serviceAccounts (rules.go,
// parseServiceAccounts): the selector over pcsa. labels and the names as
// `projectcalico.org/serviceaccount in {...}`, both required.
type serviceAccountMatch struct {
	Names    []string `json:"names"`
	Selector string   `json:"selector"`
}

// entitySelector is the one selector an entity rule's endpoints must
// match (rules.go, getEndpointSelector), from the rule's fields.
func entitySelector(policyNS, sel, nsSel, notSelector string, sa *serviceAccountMatch) (selector, error) {
	ns, err := parseOptional(nsSel)
	if err != nil {
		return nil, err
	}
	var saSel selector
	if sa != nil {
		s, err := parseOptional(sa.Selector)
		if err != nil {
			return nil, err
		}
		if s != nil {
			saSel = prefixed(s, serviceAccountPrefix)
		}
		if len(sa.Names) > 0 {
			saSel = and(saSel, cmpSel{key: labelServiceAccount, op: "in", values: sa.Names})
		}
	}
	epSel, err := parseOptional(sel)
	if err != nil {
		return nil, err
	}
	return scopeEntity(policyNS, and(saSel, epSel), ns, strings.TrimSpace(notSelector) != ""), nil
}

// scopeEntity joins an entity rule's selectors as Calico does: the
// namespace selector nsSel over pcns. labels (all(): any namespaced
// endpoint; global(): only non-namespaced ones, i.e. global network
// sets), or, in a namespaced policy without one, the policy's own
// namespace; then the service account and endpoint selectors sel. The
// namespace part applies only when some selector is used (a notSelector
// counts), so a rule of nets alone is not limited to the namespace.
// nil: no constraint.
func scopeEntity(policyNS string, sel, nsSel selector, hasNotSelector bool) selector {
	var scope selector
	if nsSel != nil {
		scope = replaced(prefixed(nsSel, namespacePrefix), hasNamespace, notSel{hasNamespace})
	} else if policyNS != "" {
		scope = inNamespace(policyNS)
	}
	if scope != nil && (sel != nil || hasNotSelector || nsSel != nil) {
		return and(scope, sel)
	}
	return sel
}
