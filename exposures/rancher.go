package exposures

import (
	"net/netip"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/rancher"
)

// Rancher's own project isolation writes Kubernetes NetworkPolicies in
// the default tier (rancher/rancher pkg/controllers/managementuser/
// networkpolicy/). Beside calico-pni's walls in default-tier mode they
// are read before the walls' end-of-tier deny like any tenant policy, so
// Find judges them like the others, by their peers:
//
//   - np-default admits the namespaces carrying the project's label
//     field.cattle.io/projectId, and the System project's: nothing
//     calico-pni does not admit itself, unless a namespace of another
//     project (or of none) carries the label, which Rancher does not
//     guard;
//   - hn-nodes admits the nodes' host-network addresses, which
//     calico-pni's host-network exception admits itself when the caller
//     gives them (Input.HostAddresses);
//   - np-<service> and hp-<pod> admit any source on their ports, pods of
//     other projects included (rancher#49430), where calico-pni admits
//     only addresses outside the cluster: always an exposure.
//
// rancherNotes says why, in the exposure's words.
var rancherNotes = map[rancher.IsolationRole]string{
	rancher.RoleProjectDefault: "Rancher's project isolation (np-default) admits every namespace labelled " + rancher.ProjectIDKey + " with the project, a label Rancher does not guard; calico-pni reads the guarded annotation",
	rancher.RoleHostNetwork:    "Rancher's project isolation (hn-nodes) admits these addresses, and calico-pni's host-network exception does not",
	rancher.RoleNodePorts:      "Rancher's NodePort/LoadBalancer exception (np-<service>) admits any source, pods of other projects included (rancher#49430); calico-pni's externalServices admits addresses outside the cluster only",
	rancher.RoleHostPorts:      "Rancher's host-port exception (hp-<pod>) admits any source, pods of other projects included (rancher#49430); calico-pni's hostPorts admits addresses outside the cluster only",
}

// rancherNote is what Find adds to an exposure of p: why Rancher's
// policy opens the wall, or "" for anyone else's policy.
func rancherNote(p *evaluator.Policy) string {
	if p.Kind != evaluator.KubernetesNetworkPolicy {
		return ""
	}
	return rancherNotes[rancher.RoleByName(p.Name, p.Labels)]
}

// onlyHostAddresses reports whether an ingress peer admits nothing but
// nodes' host-network addresses that calico-pni's walls admit anyway
// (Rancher's hn-nodes, or a tenant's rule of the same kind).
func (a *analysis) onlyHostAddresses(peer calico.EntityRule, dir calico.PolicyType) bool {
	if dir != calico.Ingress || len(a.hosts) == 0 || len(peer.Nets) == 0 || peer.NotSelector != "" {
		return false
	}
	for _, n := range peer.Nets {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			addr, err := netip.ParseAddr(strings.TrimSpace(n))
			if err != nil {
				return false
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		if !p.IsSingleIP() || !a.hosts[p.Addr().Unmap()] {
			return false
		}
	}
	return true
}

// withNote adds why a policy of Rancher's opens the wall.
func withNote(opens, note string) string {
	if note == "" {
		return opens
	}
	return opens + " (" + note + ")"
}
