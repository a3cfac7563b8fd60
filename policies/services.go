package policies

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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
	out := []built{g.allow("allow-ingress-controller", false,
		fmt.Sprintf("Isolated backend namespaces (%s) accept the ingress controller (namespaces with %s) on its backend ports.", backends, controller),
		calico.And(g.isolated(), backends), nil, []calico.Rule{rule}, nil)}
	if g.cfg.IsolateEgress {
		out = append(out, g.allow("allow-ingress-controller-egress", false,
			fmt.Sprintf("An isolated ingress controller namespace (%s) may reach backend namespaces (%s) on their backend ports.", controller, backends),
			calico.And(g.isolated(), controller), nil, nil, []calico.Rule{rule}))
	}
	return out
}

// role returns the policy of one opt-in service role: traffic from a
// namespace labelled network-policy/allow_<role> to a namespace labelled
// network-policy/role_<role> on the role's ports. The same rules serve both
// directions: as ingress rules they admit consumers into role namespaces;
// as egress rules they let consumers out to them. Each side is pinned by its
// namespaceSelector, so a consumer never accepts the role's traffic and a
// role namespace never gains egress.
//
// Which consumers count is the role's setting: any namespace with the
// label (a label is a capability, as in the article), only namespaces of
// the project offering the role (one rule per such project), or only the
// listed projects.
func (g *generator) role(name string) built {
	r := g.cfg.Roles[name]
	offers := calico.Has(config.RoleLabelPrefix + name)
	consumes := calico.Has(config.AllowLabelPrefix + name)
	rule := func(from, to calico.Selector) calico.Rule {
		return calico.Rule{
			Action:      calico.Allow,
			Protocol:    calico.ProtocolFor(calico.Protocol{Name: r.Protocol}),
			Source:      calico.EntityRule{NamespaceSelector: from.String()},
			Destination: calico.EntityRule{NamespaceSelector: to.String(), Ports: r.Ports},
		}
	}
	rules := []calico.Rule{}
	who := "any namespace"
	switch r.Consumers {
	case config.ConsumersSameProject:
		who = "namespaces of the same project"
		for _, p := range slices.Sorted(maps.Keys(g.roleProjects[name])) {
			rules = append(rules, rule(calico.And(consumes, inProject(p)), calico.And(offers, inProject(p))))
		}
	case config.ConsumersProjects:
		who = "namespaces of the projects " + strings.Join(r.Projects, ", ")
		rules = append(rules, rule(calico.And(consumes, calico.In(ProjectLabel, r.Projects...)), offers))
	default:
		rules = append(rules, rule(consumes, offers))
	}
	var egress []calico.Rule
	if g.cfg.IsolateEgress {
		egress = rules
	}
	return g.allow(policyName("role-", name, len(g.view.prefix)), false,
		fmt.Sprintf("Service role %s: %s labelled %s%s reach namespaces labelled %s%s on %s %s.", name, who, config.AllowLabelPrefix, name, config.RoleLabelPrefix, name, r.Protocol, portList(r.Ports)),
		calico.And(g.isolated(), calico.Or(offers, consumes)), nil, rules, egress)
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
