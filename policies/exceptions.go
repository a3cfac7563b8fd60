package policies

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

// dns lets isolated pods resolve names: by default only at the cluster DNS
// pods (the article allowed port 53 to any address, which lets pods talk
// DNS to the internet).
func (g *generator) dns() built {
	c := g.cfg.DNS
	to := calico.EntityRule{Ports: []calico.Port{calico.PortNumber(uint16(c.Port))}}
	description := fmt.Sprintf("Isolated pods may send DNS queries (TCP and UDP %d) to any address (dns.mode: any).", c.Port)
	if c.Mode == config.DNSCluster {
		to.NamespaceSelector = calico.Eq(calico.NameLabel, c.Namespace).String()
		to.Selector = calico.MatchLabels(c.PodLabels).String()
		description = fmt.Sprintf("Isolated pods may send DNS queries (TCP and UDP %d) to the cluster DNS pods (%s in %s).", c.Port, to.Selector, c.Namespace)
	}
	var egress []calico.Rule
	for _, proto := range []calico.Protocol{calico.UDP, calico.TCP} {
		egress = append(egress, calico.Rule{Action: calico.Allow, Protocol: calico.ProtocolFor(proto), Destination: to})
	}
	return g.allow("allow-dns", true, description, g.isolated(), nil, nil, egress)
}

// kubeAPI lets isolated pods reach the Kubernetes API. Calico sees egress
// after kube-proxy's DNAT, so a pod calling kubernetes.default.svc is
// matched on the API server's real address: the endpoints of the
// default/kubernetes Service on their port, and every node address on the
// API port (Rancher's clusters proxy the API on each node). The lists are
// rebuilt from the cluster, never typed by hand; an empty list gives no
// rule at all, never a rule without addresses (which would match any).
func (g *generator) kubeAPI(snap Snapshot) built {
	byPort := map[int][]netip.Prefix{}
	for _, n := range snap.Nodes {
		for _, a := range n.Addresses {
			byPort[g.cfg.KubeAPI.Port] = append(byPort[g.cfg.KubeAPI.Port], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, cidr := range g.cfg.KubeAPI.ExtraCIDRs {
		byPort[g.cfg.KubeAPI.Port] = append(byPort[g.cfg.KubeAPI.Port], netip.MustParsePrefix(cidr))
	}
	for _, e := range snap.APIEndpoints {
		byPort[e.Port] = append(byPort[e.Port], netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
	}
	egress := []calico.Rule{}
	mode := g.cfg.KubeAPI.Mode
	if mode == config.KubeAPIAuto {
		// Calico 3.20 can match a Service's endpoints itself, following
		// them with no list to keep up to date; the addresses stay for
		// clients that call a node address directly.
		mode = config.KubeAPIAddresses
		if snap.CalicoVersion.AtLeast(3, 20) {
			mode = config.KubeAPIBoth
		}
	}
	if mode == config.KubeAPIService || mode == config.KubeAPIBoth {
		egress = append(egress, calico.Rule{
			Action:      calico.Allow,
			Protocol:    calico.ProtocolFor(calico.TCP),
			Destination: calico.EntityRule{Services: &calico.ServiceMatch{Name: "kubernetes", Namespace: "default"}},
		})
	}
	if mode == config.KubeAPIService {
		byPort = nil
	}
	for _, port := range slices.Sorted(maps.Keys(byPort)) {
		if port < 1 || port > 65535 {
			continue
		}
		v4, v6 := splitFamilies(byPort[port])
		for _, nets := range [][]string{v4, v6} {
			if len(nets) == 0 {
				continue
			}
			egress = append(egress, calico.Rule{
				Action:      calico.Allow,
				Protocol:    calico.ProtocolFor(calico.TCP),
				Destination: calico.EntityRule{Nets: nets, Ports: []calico.Port{calico.PortNumber(uint16(port))}},
			})
		}
	}
	return g.allow("allow-kube-api", true,
		fmt.Sprintf("Isolated pods may reach the Kubernetes API (kubeAPI.mode %s): the endpoints of the default/kubernetes Service and node addresses on the API port, kept up to date.", mode),
		g.isolated(), nil, nil, egress)
}

// splitFamilies returns sorted, de-duplicated CIDRs, IPv4 and IPv6 apart:
// Calico rejects a rule that mixes them.
func splitFamilies(prefixes []netip.Prefix) (v4, v6 []string) {
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	prefixes = slices.Compact(prefixes)
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	return v4, v6
}

// workloads returns the exceptions for Rancher's own pods: the agent,
// monitoring and logging. They usually run in exempt namespaces and need
// nothing; these policies matter when they run in an isolated one, and for
// monitoring, which scrapes pods in every isolated namespace.
func (g *generator) workloads() []built {
	var out []built
	c := g.cfg
	if len(c.Monitoring) > 0 {
		var ingress []calico.Rule
		for _, w := range c.Monitoring {
			ingress = append(ingress, calico.Rule{Action: calico.Allow, Source: calico.EntityRule{
				NamespaceSelector: calico.Glob(calico.NameLabel, w.Namespace).String(),
				Selector:          serviceAccounts(w.ServiceAccounts).String(),
			}})
		}
		out = append(out, g.allow("allow-monitoring-ingress", true,
			"Isolated pods accept traffic from Rancher monitoring's Prometheus (configuration: monitoring).",
			g.isolated(), nil, ingress, nil))
	}
	if !c.IsolateEgress {
		return out
	}
	families := []struct {
		name, what string
		list       []config.Workloads
	}{
		{"allow-rancher-agent-egress", "The Rancher agent (configuration: rancherAgent), which serves kubectl exec and logs,", c.RancherAgent},
		{"allow-monitoring-egress", "Rancher monitoring (configuration: monitoring)", c.Monitoring},
		{"allow-logging-egress", "Rancher logging (configuration: logging)", c.Logging},
	}
	for _, f := range families {
		if len(f.list) == 0 {
			continue
		}
		var pods []calico.Selector
		for _, w := range f.list {
			pods = append(pods, calico.And(calico.Glob(calico.NamespaceLabel, w.Namespace), serviceAccounts(w.ServiceAccounts)))
		}
		out = append(out, g.allow(f.name, true,
			fmt.Sprintf("%s may send traffic anywhere from an isolated namespace.", f.what),
			g.isolated(), calico.Or(pods...), nil, []calico.Rule{{Action: calico.Allow}}))
	}
	return out
}

// serviceAccounts matches pods running as any of the given service
// accounts (names or one-'*' patterns).
func serviceAccounts(patterns []string) calico.Selector {
	var xs []calico.Selector
	for _, p := range patterns {
		xs = append(xs, calico.Glob(calico.ServiceAccountLabel, p))
	}
	return calico.Or(xs...)
}
