package evaluator

import (
	"github.com/calico-pni/calico-pni/calico"
)

// refusal is a part of a rule that Calico's validation refuses, and why,
// in Calico's words.
type refusal struct{ field, reason string }

// ruleRefusal returns what in a rule Calico's v3 validation refuses, or
// false: libcalico-go/lib/validator/v3/validator.go (validateRule,
// validateEntityRule, validateNetworkPolicySpec,
// validateGlobalNetworkPolicySpec), which from Calico 3.32 leaves some of
// it to the CEL rules of api/pkg/apis/projectcalico/v3/policy_common.go.
// The v3 API refuses such a policy, and Felix drops a v1 object that fails
// the same checks, so what it would do cannot be told.
func ruleRefusal(r calico.Rule, dir calico.PolicyType, global bool, v calico.Version) (refusal, bool) {
	if f, ok := portsRefusal(r, v); ok {
		return f, true
	}
	// Services are a destination of egress rules and a source of ingress
	// rules only.
	if dir == calico.Ingress && r.Destination.Services != nil {
		return refusal{".destination.services", "not allowed in ingress rule destination"}, true
	}
	if dir == calico.Egress && r.Source.Services != nil {
		return refusal{".source.services", "not allowed in egress rule source"}, true
	}
	for _, side := range []struct {
		field string
		e     calico.EntityRule
	}{{".source", r.Source}, {".destination", r.Destination}} {
		if f, ok := servicesRefusal(side.field, side.e, global); ok {
			return f, true
		}
	}
	if svc := r.Destination.Services; svc != nil && (len(r.Destination.Ports) > 0 || len(r.Destination.NotPorts) > 0) {
		return refusal{".destination", "ports and notPorts cannot be specified with services"}, true
	}
	return refusal{}, false
}

// portsRefusal: ports need protocol TCP, UDP or SCTP. Up to Calico 3.31
// any port does; from 3.32 a rule without protocol may name ports, and
// only numbers and ranges need one. With the version unknown, a named port
// without protocol cannot be judged.
func portsRefusal(r calico.Rule, v calico.Version) (refusal, bool) {
	var all []calico.Port
	for _, e := range []calico.EntityRule{r.Source, r.Destination} {
		all = append(append(all, e.Ports...), e.NotPorts...)
	}
	if len(all) == 0 {
		return refusal{}, false
	}
	const needsProtocol = "rules that specify ports must set protocol to TCP or UDP or SCTP"
	if r.Protocol != nil {
		if !r.Protocol.SupportsPorts() {
			return refusal{"", needsProtocol}, true
		}
		return refusal{}, false
	}
	named := true
	for _, p := range all {
		if p.Name == "" {
			named = false
		}
	}
	switch {
	case !named:
		return refusal{"", "rules with numeric port or port range must set protocol to TCP or UDP or SCTP"}, true
	case v == (calico.Version{}):
		return refusal{"", "the rule names ports without a protocol, which Calico 3.31 and earlier refuse (" + needsProtocol + ") and 3.32 and later accept; the Calico version is not known"}, true
	case !v.AtLeast(3, 32):
		return refusal{"", needsProtocol}, true
	}
	return refusal{}, false
}

// servicesRefusal: a Service match names the Service, stands alone among
// the ways to match endpoints, and in a GlobalNetworkPolicy names its
// namespace (there, names are not qualified by the policy's namespace).
func servicesRefusal(field string, e calico.EntityRule, global bool) (refusal, bool) {
	svc := e.Services
	if svc == nil {
		return refusal{}, false
	}
	switch {
	case svc.Name == "":
		return refusal{field + ".services", "must specify a service name"}, true
	case global && svc.Namespace == "":
		return refusal{field + ".services.namespace", "must specify a namespace"}, true
	case e.NamespaceSelector != "":
		return refusal{field + ".services", "cannot specify NamespaceSelector and Services on the same rule"}, true
	case e.Selector != "" || e.NotSelector != "":
		return refusal{field + ".services", "cannot specify Selector/NotSelector and Services on the same rule"}, true
	case e.ServiceAccounts != nil:
		return refusal{field + ".services", "cannot specify ServiceAccounts and Services on the same rule"}, true
	case len(e.Nets) > 0 || len(e.NotNets) > 0:
		return refusal{field + ".services", "cannot specify Nets/NotNets and Services on the same rule"}, true
	}
	return refusal{}, false
}
