package policies

import (
	"fmt"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

// ingressController returns the article's ingress pair, with namespace
// labels matched as namespace labels (the article matched them with pod
// selectors, which never see namespace labels, so its policies matched
// nothing). The controller's namespace carries
// ingressController.namespaceLabels; backend namespaces carry
// ingressController.backendLabels. The controller connects to backend
// pods directly, so the ports are the pods' own.
func (g *generator) ingressController() []built {
	c := g.cfg.IngressController
	controller := calico.MatchLabels(c.NamespaceLabels)
	backends := calico.MatchLabels(c.BackendLabels)
	rule := calico.Rule{
		Action:   calico.Allow,
		Protocol: calico.ProtocolFor(calico.TCP),
		Source:   calico.EntityRule{NamespaceSelector: controller.String()},
		Destination: calico.EntityRule{
			NamespaceSelector: backends.String(),
			Ports:             c.Ports,
		},
	}
	out := []built{allowPolicy("pni-allow-ingress-controller",
		fmt.Sprintf("Isolated backend namespaces (%s) accept the ingress controller (namespaces with %s) on its backend ports.", backends, controller),
		calico.And(isolated(), backends), nil, []calico.Rule{rule}, nil)}
	if g.cfg.IsolateEgress {
		out = append(out, allowPolicy("pni-allow-ingress-controller-egress",
			fmt.Sprintf("An isolated ingress controller namespace (%s) may reach backend namespaces (%s) on their backend ports.", controller, backends),
			calico.And(isolated(), controller), nil, nil, []calico.Rule{rule}))
	}
	return out
}

// role returns the policy of one opt-in service role: traffic from a
// namespace labelled network-policy/allow_<role> to a namespace labelled
// network-policy/role_<role> on the role's ports. The same rule serves both
// directions: as an ingress rule it admits consumers into role
// namespaces; as an egress rule it lets consumers out to them. Each side is
// pinned by its namespaceSelector, so a consumer never accepts the role's
// traffic and a role namespace never gains egress.
//
// Anyone who can label a namespace network-policy/allow_<role> reaches
// every namespace offering the role: the label is a capability.
func (g *generator) role(name string) built {
	r := g.cfg.Roles[name]
	offers := calico.Has(config.RoleLabelPrefix + name)
	consumes := calico.Has(config.AllowLabelPrefix + name)
	rule := calico.Rule{
		Action:      calico.Allow,
		Protocol:    calico.ProtocolFor(calico.Protocol{Name: r.Protocol}),
		Source:      calico.EntityRule{NamespaceSelector: consumes.String()},
		Destination: calico.EntityRule{NamespaceSelector: offers.String(), Ports: r.Ports},
	}
	var egress []calico.Rule
	if g.cfg.IsolateEgress {
		egress = []calico.Rule{rule}
	}
	return allowPolicy(policyName("pni-role-", name),
		fmt.Sprintf("Service role %s: namespaces labelled %s%s reach namespaces labelled %s%s on %s %s.", name, config.AllowLabelPrefix, name, config.RoleLabelPrefix, name, r.Protocol, portList(r.Ports)),
		calico.And(isolated(), calico.Or(offers, consumes)), nil, []calico.Rule{rule}, egress)
}

func portList(ports []calico.Port) string {
	s := ""
	for i, p := range ports {
		if i > 0 {
			s += ", "
		}
		s += p.String()
	}
	return s
}
