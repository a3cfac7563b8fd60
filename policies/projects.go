package policies

import (
	"fmt"

	"github.com/calico-pni/calico-pni/calico"
)

// baseline returns the deny baseline: policies with no rules that select
// every isolated namespace. Selecting is enough: Calico denies, at the end
// of the tier, whatever no policy allows. Users' own policies in the same
// tier (Kubernetes NetworkPolicies included) can still allow more.
func (g *generator) baseline() []built {
	dirs := []calico.PolicyType{calico.Ingress}
	if g.cfg.IsolateEgress {
		dirs = append(dirs, calico.Egress)
	}
	var out []built
	for _, dir := range dirs {
		name := "pni-deny-ingress"
		what := "into"
		if dir == calico.Egress {
			name, what = "pni-deny-egress", "out of"
		}
		out = append(out, built{
			policy: calico.Policy{
				Name:        name,
				Class:       calico.ClassBaseline,
				Description: fmt.Sprintf("Deny baseline: traffic %s isolated namespaces is denied unless a policy allows it.", what),
				Spec: calico.GlobalNetworkPolicySpec{
					Order:             order(BaselineOrder),
					NamespaceSelector: isolated().String(),
					Types:             []calico.PolicyType{dir},
				},
			},
			selects: isolated(),
		})
	}
	return out
}

// project returns the allow policy of one Rancher project: its isolated
// namespaces accept traffic from, and send traffic to, every namespace of
// the project, as Rancher's np-default does on Canal (ingress) and the
// article asks for egress. One GlobalNetworkPolicy per project replaces
// Rancher's one NetworkPolicy per namespace.
func (g *generator) project(id string) built {
	member := calico.EntityRule{NamespaceSelector: inProject(id).String()}
	ingress := []calico.Rule{{Action: calico.Allow, Source: member}}
	var egress []calico.Rule
	if g.cfg.IsolateEgress {
		egress = []calico.Rule{{Action: calico.Allow, Destination: member}}
	}
	return allowPolicy(policyName("pni-project-", id),
		fmt.Sprintf("Rancher project %s: its isolated namespaces exchange traffic with every namespace of the project.", id),
		calico.And(isolated(), inProject(id)), nil, ingress, egress)
}

// fromSystemProject lets the System project reach every isolated
// namespace, as Rancher's np-default does: ingress controllers, monitoring
// and Rancher's own agents live there.
func (g *generator) fromSystemProject() built {
	return allowPolicy("pni-allow-from-system-project",
		fmt.Sprintf("Isolated namespaces accept traffic from the System project (%s).", g.d.SystemProject),
		isolated(), nil,
		[]calico.Rule{{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: inProject(g.d.SystemProject).String()}}},
		nil)
}

// namespaceOnItsOwn returns the allow policy of a namespace isolated in no
// project: its pods may talk to each other, and nothing else is allowed
// beyond the shared exceptions.
func (g *generator) namespaceOnItsOwn(name string) built {
	self := calico.Eq(calico.NameLabel, name)
	own := calico.EntityRule{NamespaceSelector: self.String()}
	ingress := []calico.Rule{{Action: calico.Allow, Source: own}}
	var egress []calico.Rule
	if g.cfg.IsolateEgress {
		egress = []calico.Rule{{Action: calico.Allow, Destination: own}}
	}
	return allowPolicy(policyName("pni-namespace-", name),
		fmt.Sprintf("Namespace %s, isolated in no project: its pods exchange traffic with each other.", name),
		calico.And(isolated(), self), nil, ingress, egress)
}
