package evaluator

import (
	"net/netip"
	"strings"
	"testing"
)

// matchCase is one rule, as the only ingress rule of a policy selecting
// db/pg, and the verdict for a connection to db/pg.
type matchCase struct {
	name string
	// policy is the policy holding the rule; it selects db/pg.
	policy Policy
	src    string
	port   uint16
	want   Verdict
}

func runMatchCases(t *testing.T, c *Cluster, tests []matchCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := *c
			cl.Policies = []Policy{tt.policy}
			ix := NewIndex(&cl)
			port := tt.port
			if port == 0 {
				port = 5432
			}
			src := tt.src
			if src == "" {
				src = "shop/web"
			}
			check(t, ix, src, "db/pg", port, tt.want)
		})
	}
}

func ingressGNP(t *testing.T, rule string) Policy {
	return gnp(t, "p", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: ["+rule+"]}")
}

func ingressNP(t *testing.T, rule string) Policy {
	return np(t, "db", "p", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: ["+rule+"]}")
}

// TestSelectorScope follows libcalico-go's rule conversion
// (syncersv1/updateprocessors/rules.go, getEndpointSelector) and Calico's
// docs (network-policy/get-started/calico-policy/calico-labels): in a
// namespaced NetworkPolicy a rule selector without namespaceSelector only
// sees the policy's namespace; in a GlobalNetworkPolicy it sees every
// namespace; a namespaceSelector widens it to the namespaces it selects
// (all() any namespace, global() only non-namespaced endpoints, never a
// pod); notSelector is never scoped.
func TestSelectorScope(t *testing.T) {
	runMatchCases(t, world(), []matchCase{
		{name: "NetworkPolicy: selector stays in the policy's namespace", policy: ingressNP(t, "{action: Allow, source: {selector: app == 'web'}}"), want: Deny},
		{name: "GlobalNetworkPolicy: selector sees every namespace", policy: ingressGNP(t, "{action: Allow, source: {selector: app == 'web'}}"), want: Allow},
		{name: "NetworkPolicy: namespaceSelector widens the selector", policy: ingressNP(t, "{action: Allow, source: {selector: app == 'web', namespaceSelector: project == 'a'}}"), want: Allow},
		{name: "namespaceSelector all() is any namespace", policy: ingressNP(t, "{action: Allow, source: {namespaceSelector: all()}}"), want: Allow},
		{name: "namespaceSelector global() never matches a pod", policy: ingressGNP(t, "{action: Allow, source: {namespaceSelector: global()}}"), want: Deny},
		{name: "notSelector alone in a NetworkPolicy still limits to the namespace", policy: ingressNP(t, "{action: Allow, source: {notSelector: app == 'other'}}"), want: Deny},
		{name: "notSelector is not scoped: it excludes pods of any namespace", policy: ingressGNP(t, "{action: Allow, source: {notSelector: app == 'web'}}"), want: Deny},
		{name: "notSelector all() admits only what is no endpoint", policy: ingressGNP(t, "{action: Allow, source: {notSelector: all()}}"), src: "198.51.100.7", want: Allow},
		{name: "notSelector all() refuses pods", policy: ingressGNP(t, "{action: Allow, source: {notSelector: all()}}"), want: Deny},
		{name: "a selector never matches an address that is no endpoint", policy: ingressGNP(t, "{action: Allow, source: {selector: all()}}"), src: "198.51.100.7", want: Deny},
	})
}

// TestCalicoLabels follows the labels Calico gives a pod's endpoint
// (libcalico-go/lib/backend/k8s/conversion: workload_endpoint_default.go,
// NamespaceToProfile, ServiceAccountToProfile) and the prefixes its rule
// conversion adds (pcns. for namespaceSelector, pcsa. for service account
// selectors).
func TestCalicoLabels(t *testing.T) {
	runMatchCases(t, world(), []matchCase{
		{name: "projectcalico.org/namespace", policy: ingressGNP(t, "{action: Allow, source: {selector: projectcalico.org/namespace == 'shop'}}"), want: Allow},
		{name: "projectcalico.org/orchestrator is k8s", policy: ingressGNP(t, "{action: Allow, source: {selector: projectcalico.org/orchestrator == 'k8s'}}"), want: Allow},
		{name: "projectcalico.org/serviceaccount", policy: ingressGNP(t, "{action: Allow, source: {selector: projectcalico.org/serviceaccount == 'default'}}"), want: Allow},
		{name: "namespace name as projectcalico.org/name in a namespaceSelector", policy: ingressGNP(t, "{action: Allow, source: {namespaceSelector: projectcalico.org/name == 'shop'}}"), want: Allow},
		{name: "namespace labels reach pod selectors as pcns.", policy: ingressGNP(t, "{action: Allow, source: {selector: pcns.team == 'web'}}"), want: Allow},
		{name: "a pod selector does not see namespace labels unprefixed", policy: ingressGNP(t, "{action: Allow, source: {selector: team == 'web'}}"), want: Deny},
		{name: "service account labels reach pod selectors as pcsa.", policy: ingressGNP(t, "{action: Allow, source: {selector: pcsa.tier == 'frontend'}}"), want: Allow},
		{name: "!= matches an absent label", policy: ingressGNP(t, "{action: Deny, source: {selector: missing != 'x'}}"), want: Deny},
	})
}

// TestForgedProfileLabels: Calico strips a pod's own labels prefixed pcns.
// and pcsa. before Felix sees its endpoint, "so that a workload endpoint
// cannot pretend it is in another namespace"
// (libcalico-go/lib/backend/syncersv1/updateprocessors/
// workloadendpointprocessor.go); the namespace's and service account's
// labels alone reach selectors with those prefixes. A pod of project b
// labelled as if its namespace were in project a stays out.
func TestForgedProfileLabels(t *testing.T) {
	c := world(
		gnp(t, "project-a-only", "{order: 1, selector: app == 'web', types: [Ingress], ingress: [{action: Allow, source: {namespaceSelector: project == 'a'}}]}"),
		gnp(t, "frontend-only", "{order: 2, selector: app == 'web', types: [Ingress], ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}, source: {serviceAccounts: {selector: tier == 'frontend'}}}]}"),
	)
	c.Pods = append(c.Pods, pod("db", "forger", "10.42.2.66", "app=tool", "pcns.project=a", "pcns.projectcalico.org/name=shop", "pcsa.tier=frontend"))
	ix := NewIndex(c)
	check(t, ix, "db/forger", "shop/web", 80, Deny)
	check(t, ix, "db/forger", "shop/web", 8080, Deny)
	if labels := endpoint(t, ix, "db/forger").Labels; labels["pcns.project"] != "b" || labels["pcns.projectcalico.org/name"] != "db" || labels["pcsa.tier"] != "" {
		t.Errorf("the forger's endpoint labels: %v", labels)
	}
	// The same pod without forged labels is denied alike, and a pod of
	// project a is let in.
	check(t, ix, "db/pg", "shop/web", 80, Deny)
	check(t, ix, "shop/web", "shop/web", 80, Allow)
}

// TestServiceAccounts follows parseServiceAccounts in libcalico-go's rule
// conversion: names match projectcalico.org/serviceaccount, the selector
// matches the service account's labels; both must hold when both are set.
func TestServiceAccounts(t *testing.T) {
	runMatchCases(t, world(), []matchCase{
		{name: "by name", policy: ingressGNP(t, "{action: Allow, source: {serviceAccounts: {names: [default]}}}"), want: Allow},
		{name: "by another name", policy: ingressGNP(t, "{action: Allow, source: {serviceAccounts: {names: [builder]}}}"), want: Deny},
		{name: "by labels", policy: ingressGNP(t, "{action: Allow, source: {serviceAccounts: {selector: tier == 'frontend'}}}"), want: Allow},
		{name: "names and labels together", policy: ingressGNP(t, "{action: Allow, source: {serviceAccounts: {names: [default], selector: tier == 'backend'}}}"), want: Deny},
		{name: "in a NetworkPolicy, only the policy's namespace", policy: ingressNP(t, "{action: Allow, source: {serviceAccounts: {names: [default]}}}"), want: Deny},
		{name: "top-level serviceAccountSelector selects the endpoint", policy: gnp(t, "p", "{order: 1, serviceAccountSelector: tier == 'frontend', types: [Egress]}"), want: Deny},
	})
}

// TestLongServiceAccountName: the pod's Kubernetes conversion leaves out
// projectcalico.org/serviceaccount for a name of 63 characters or more (a
// label value's limit), but the workload endpoint update processor sets
// it from spec.serviceAccountName whatever its length, so Felix sees it
// (updateprocessors/workloadendpointprocessor.go; projectcalico/calico
// issue 4529).
func TestLongServiceAccountName(t *testing.T) {
	long := strings.Repeat("builder-", 9) + "x" // 73 characters
	c := world(ingressGNP(t, "{action: Allow, source: {serviceAccounts: {names: ["+long+"]}}}"))
	c.Pods[0].ServiceAccount = long
	c.ServiceAccounts = append(c.ServiceAccounts, ServiceAccount{Namespace: "shop", Name: long})
	check(t, NewIndex(c), "shop/web", "db/pg", 5432, Allow)
}

// TestNets follows Felix's rendering of nets per IP family
// (felix/rules/policy.go, FilterRuleToIPVersion): a packet must be in one
// of nets and in none of notNets; nets of the other family are dropped;
// a rule whose nets are all of the other family, or whose notNets hold
// the catch-all, is not rendered.
func TestNets(t *testing.T) {
	runMatchCases(t, world(), []matchCase{
		{name: "in nets", policy: ingressGNP(t, "{action: Allow, source: {nets: [10.42.1.0/24]}}"), want: Allow},
		{name: "a bare address is a /32", policy: ingressGNP(t, "{action: Allow, source: {nets: [10.42.1.10]}}"), want: Allow},
		{name: "not in nets", policy: ingressGNP(t, "{action: Allow, source: {nets: [10.42.3.0/24]}}"), want: Deny},
		{name: "in notNets", policy: ingressGNP(t, "{action: Allow, source: {nets: [10.0.0.0/8], notNets: [10.42.1.0/24]}}"), want: Deny},
		{name: "IPv6 nets do not match IPv4 traffic", policy: ingressGNP(t, "{action: Allow, source: {nets: ['fd00::/8']}}"), want: Deny},
		{name: "mixed families: the IPv4 part applies", policy: ingressGNP(t, "{action: Allow, source: {nets: ['fd00::/8', 10.42.1.0/24]}}"), want: Allow},
		{name: "ipVersion 6 does not match IPv4 traffic", policy: ingressGNP(t, "{action: Allow, ipVersion: 6}"), want: Deny},
		{name: "notNets with the catch-all: rule not rendered", policy: ingressGNP(t, "{action: Allow, source: {notNets: [0.0.0.0/0]}}"), want: Deny},
		{name: "notNets only of the other family: rule not rendered", policy: ingressGNP(t, "{action: Allow, source: {notNets: ['fd00::/8']}}"), want: Deny},
		{name: "destination nets match the pod itself", policy: ingressGNP(t, "{action: Allow, destination: {nets: [10.42.2.10/32]}}"), want: Allow},
		{name: "an outside address", policy: ingressGNP(t, "{action: Allow, source: {nets: [198.51.100.0/24]}}"), src: "198.51.100.7", want: Allow},
	})
}

// TestPortsAndProtocols: destination ports are numbers, ranges "min:max"
// or container port names, resolved on the destination pod with the
// traffic's protocol (felix/calc/rule_scanner.go); notPorts excludes;
// protocols match by name or number, notProtocol excludes.
func TestPortsAndProtocols(t *testing.T) {
	c := world()
	c.Pods[1].Ports = []NamedPort{{Name: "postgres", Protocol: "TCP", Port: 5432}, {Name: "dns", Protocol: "UDP", Port: 5432}}
	runMatchCases(t, c, []matchCase{
		{name: "one port", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: [5432]}}"), want: Allow},
		{name: "a range", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: ['5000:6000']}}"), want: Allow},
		{name: "outside the range", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: ['6000:7000']}}"), want: Deny},
		{name: "notPorts", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {notPorts: [5432]}}"), want: Deny},
		{name: "named port of the destination pod", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: [postgres]}}"), want: Allow},
		{name: "named port with another protocol", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: [dns]}}"), want: Deny},
		{name: "named port at another number", policy: ingressGNP(t, "{action: Allow, protocol: TCP, destination: {ports: [postgres]}}"), port: 80, want: Deny},
		{name: "protocol by number", policy: ingressGNP(t, "{action: Allow, protocol: 6}"), want: Allow},
		{name: "another protocol", policy: ingressGNP(t, "{action: Allow, protocol: UDP}"), want: Deny},
		{name: "notProtocol", policy: ingressGNP(t, "{action: Allow, notProtocol: TCP}"), want: Deny},
		{name: "ICMP rule never matches TCP", policy: ingressGNP(t, "{action: Allow, protocol: ICMP, icmp: {type: 8}}"), want: Deny},
	})
}

// TestServices follows Felix's Service matches (felix/calc/rule_scanner.go,
// felix/serviceindex): as a destination, the address, protocol and port of
// one of the Service's EndpointSlice endpoints, ready or not; as a
// source, its addresses.
func TestServices(t *testing.T) {
	c := world()
	c.Services = []ServiceEndpoints{
		{Namespace: "db", Name: "pg", Endpoints: []ServiceEndpoint{{Addr: addrs("10.42.2.10")[0], Protocol: "TCP", Port: 5432}}},
		{Namespace: "shop", Name: "web", Endpoints: []ServiceEndpoint{{Addr: addrs("10.42.1.10")[0], Protocol: "TCP", Port: 80}}},
	}
	egress := func(rule string) Policy {
		return gnp(t, "p", "{order: 1, selector: app == 'web', types: [Egress], egress: ["+rule+"]}")
	}
	runMatchCases(t, c, []matchCase{
		{name: "destination Service endpoint and port", policy: egress("{action: Allow, protocol: TCP, destination: {services: {name: pg, namespace: db}}}"), want: Allow},
		{name: "destination Service, another port", policy: egress("{action: Allow, protocol: TCP, destination: {services: {name: pg, namespace: db}}}"), port: 80, want: Deny},
		{name: "source Service by address", policy: ingressGNP(t, "{action: Allow, source: {services: {name: web, namespace: shop}}}"), want: Allow},
		{name: "a Service whose EndpointSlices were not read", policy: egress("{action: Allow, destination: {services: {name: other, namespace: db}}}"), want: Indeterminate},
	})
}

// TestServiceWithoutNamespace: in a namespaced NetworkPolicy, a services
// match without namespace never matches in Felix. The rule reaches Felix
// with the namespace empty (libcalico-go/.../updateprocessors/rules.go
// copies it as it is), Felix asks its Service index for "/<name>"
// (felix/calc/rule_scanner.go), and the index is keyed by the
// EndpointSlices' "<namespace>/<name>" (felix/serviceindex/
// serviceindex.go), so the IP set stays empty, even for a Service of the
// policy's own namespace (whatever the field's API doc says). The
// evaluator says so instead of calling it undecidable.
func TestServiceWithoutNamespace(t *testing.T) {
	c := world()
	// A Service of the policy's namespace whose endpoint is db/pg.
	c.Services = []ServiceEndpoints{{Namespace: "shop", Name: "pg-proxy", Endpoints: []ServiceEndpoint{{Addr: addrs("10.42.2.10")[0], Protocol: "TCP", Port: 5432}}}}
	c.Policies = []Policy{np(t, "shop", "to-proxy", "{order: 1, selector: app == 'web', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {services: {name: pg-proxy}}}]}")}
	ix := NewIndex(c)
	r := check(t, ix, "shop/web", "db/pg", 5432, Deny)
	if r.Egress.Verdict != Deny {
		t.Errorf("egress %s: %s", r.Egress.Verdict, r.Egress.Reason)
	}
	notes := strings.Join(ix.Notes(), "\n")
	if !strings.Contains(notes, `NetworkPolicy shop/to-proxy: spec.egress[0].destination.services names Service pg-proxy without a namespace`) || !strings.Contains(notes, "never matches") {
		t.Errorf("notes: %s", notes)
	}
	// With the namespace written out, it matches.
	c.Policies[0] = np(t, "shop", "to-proxy", "{order: 1, selector: app == 'web', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {services: {name: pg-proxy, namespace: shop}}}]}")
	check(t, NewIndex(c), "shop/web", "db/pg", 5432, Allow)
}

// TestRuleMatches: the building block for questions about one rule, on
// the policies Selecting returns.
func TestRuleMatches(t *testing.T) {
	ix := NewIndex(world(ingressGNP(t, "{action: Allow, source: {namespaceSelector: project == 'a'}}, {action: Allow, protocol: UDP}")))
	web, pg := endpoint(t, ix, "shop/web"), endpoint(t, ix, "db/pg")
	tiers, err := ix.Selecting(pg, "Ingress")
	if err != nil || len(tiers) != 1 || len(tiers[0].Policies) != 1 {
		t.Fatalf("selecting: %+v %v", tiers, err)
	}
	p := tiers[0].Policies[0]
	tcp := Traffic{Protocol: "TCP", Port: 5432, Family: 4}
	if m, _ := ix.RuleMatches(p, "Ingress", 0, pg, web, tcp); m != Yes {
		t.Errorf("rule 0 from shop: %s", m)
	}
	if m, _ := ix.RuleMatches(p, "Ingress", 1, pg, web, tcp); m != No {
		t.Errorf("rule 1 (UDP) on TCP: %s", m)
	}
	if m, why := ix.RuleMatches(p, "Ingress", 2, pg, web, tcp); m != Unknown || why == "" {
		t.Errorf("a rule that does not exist: %s %q", m, why)
	}
	if m, why := ix.RuleMatches(&Policy{Name: "other"}, "Ingress", 0, pg, web, tcp); m != Unknown || why == "" {
		t.Errorf("a policy of another index: %s %q", m, why)
	}
}

// TestNetworkSets follows Felix's IP sets of rule selectors
// (felix/labelindex, felix/calc/rule_scanner.go): a selector matches the
// addresses of the network sets it selects. A NetworkSet carries
// projectcalico.org/namespace and inherits its namespace's profile labels
// (pcns.*) (updateprocessors/networksetprocessor.go); its own labels take
// priority over inherited ones (label_inheritance_index.go), and unlike a
// pod's its pcns. labels are not dropped, so a tenant's NetworkSet can
// carry another project's namespace labels.
func TestNetworkSets(t *testing.T) {
	c := world()
	c.NetworkSets = []NetworkSet{
		{Name: "partners", Labels: labels("role=partner"), Nets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		{Namespace: "db", Name: "db-peers", Labels: labels("role=peer"), Nets: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/25")}},
		{Namespace: "db", Name: "forged", Labels: labels("pcns.project=a"), Nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
	}
	runMatchCases(t, c, []matchCase{
		{name: "a GlobalNetworkSet by its labels", policy: ingressGNP(t, "{action: Allow, source: {selector: role == 'partner'}}"), src: "198.51.100.7", want: Allow},
		{name: "an address outside the set", policy: ingressGNP(t, "{action: Allow, source: {selector: role == 'partner'}}"), src: "198.51.101.7", want: Deny},
		{name: "notSelector all() excludes every network set's addresses", policy: ingressGNP(t, "{action: Allow, source: {notSelector: all()}}"), src: "198.51.100.7", want: Deny},
		{name: "a NetworkSet of the policy's namespace", policy: ingressNP(t, "{action: Allow, source: {selector: role == 'peer'}}"), src: "203.0.113.9", want: Allow},
		{name: "a GlobalNetworkSet is outside a NetworkPolicy's namespace", policy: ingressNP(t, "{action: Allow, source: {selector: role == 'partner'}}"), src: "198.51.100.7", want: Deny},
		{name: "namespaceSelector reaches NetworkSets through their namespace's labels", policy: ingressGNP(t, "{action: Allow, source: {namespaceSelector: project == 'b'}}"), src: "203.0.113.9", want: Allow},
		{name: "namespaceSelector global() reaches GlobalNetworkSets only", policy: ingressGNP(t, "{action: Allow, source: {namespaceSelector: global()}}"), src: "198.51.100.7", want: Allow},
		{name: "a NetworkSet's own pcns. label wins over its namespace's", policy: ingressGNP(t, "{action: Allow, source: {namespaceSelector: project == 'a'}}"), src: "192.0.2.1", want: Allow},
	})
}
