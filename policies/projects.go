package policies

import (
	"fmt"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
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
		name := g.view.prefix + "deny-ingress"
		what := "into"
		if dir == calico.Egress {
			name, what = g.view.prefix+"deny-egress", "out of"
		}
		out = append(out, built{
			policy: calico.Policy{
				Name:        name,
				Class:       calico.ClassBaseline,
				Description: g.baselineDescription(what),
				Spec: calico.GlobalNetworkPolicySpec{
					Tier:              g.tier,
					Order:             order(BaselineOrder),
					NamespaceSelector: g.isolated().String(),
					Types:             []calico.PolicyType{dir},
				},
			},
			selects: g.isolated(),
		})
	}
	return out
}

func (g *generator) baselineDescription(what string) string {
	if g.tier != "" {
		return fmt.Sprintf("Deny baseline: traffic %s isolated namespaces that no policy of calico-pni's tier allows or passes on is denied at the end of the tier, whatever the namespaces' own policies say.", what)
	}
	return fmt.Sprintf("Deny baseline: traffic %s isolated namespaces is denied unless a policy allows it.", what)
}

// project returns the allow policy of one Rancher project: its isolated
// namespaces accept traffic from, and send traffic to, every namespace of
// the project, as Rancher's np-default does on Canal (ingress) and the
// article asks for egress. One GlobalNetworkPolicy per project replaces
// Rancher's one NetworkPolicy per namespace. Configured project peers add
// rules on both sides: ingress from the peer, egress to the project that
// accepts it (rancher#18899).
func (g *generator) project(id string) built {
	member := calico.EntityRule{NamespaceSelector: inProject(id).String()}
	ingress := []calico.Rule{{Action: calico.Allow, Source: member}}
	egress := []calico.Rule{{Action: calico.Allow, Destination: member}}
	var peers []string
	for _, peer := range g.cfg.ProjectPeers {
		for _, from := range peer.From {
			switch id {
			case peer.Project:
				ingress = append(ingress, peerRule(peer, calico.EntityRule{NamespaceSelector: inProject(from).String()}, calico.EntityRule{}))
				peers = append(peers, "accepts "+from)
			case from:
				egress = append(egress, peerRule(peer, calico.EntityRule{}, calico.EntityRule{NamespaceSelector: inProject(peer.Project).String()}))
				peers = append(peers, "reaches "+peer.Project)
			}
		}
	}
	if !g.cfg.IsolateEgress {
		egress = nil
	}
	description := fmt.Sprintf("Rancher project %s: its isolated namespaces exchange traffic with every namespace of the project.", id)
	if len(peers) > 0 {
		description += " Project peers (projectPeers): " + strings.Join(peers, ", ") + "."
	}
	return g.allow(policyName("project-", id, len(g.view.prefix)), false, description,
		calico.And(g.isolated(), inProject(id)), nil, ingress, egress)
}

// peerRule allows traffic between peer projects, on the peer's protocol
// and ports if it names any.
func peerRule(peer config.ProjectPeer, source, destination calico.EntityRule) calico.Rule {
	r := calico.Rule{Action: calico.Allow, Source: source, Destination: destination}
	if len(peer.Ports) > 0 {
		r.Protocol = calico.ProtocolFor(calico.Protocol{Name: peer.Protocol})
		r.Destination.Ports = peer.Ports
	}
	return r
}

// fromSystemProject lets the System project reach every isolated
// namespace, as Rancher's np-default does: ingress controllers, monitoring
// and Rancher's own agents live there.
func (g *generator) fromSystemProject() built {
	return g.allow("allow-from-system-project", false,
		fmt.Sprintf("Isolated namespaces accept traffic from the System project (%s).", g.d.SystemProject),
		g.isolated(), nil,
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
	return g.allow(policyName("namespace-", name, len(g.view.prefix)), false,
		fmt.Sprintf("Namespace %s, isolated in no project: its pods exchange traffic with each other.", name),
		calico.And(g.isolated(), self), nil, ingress, egress)
}
