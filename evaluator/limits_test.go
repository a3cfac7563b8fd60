package evaluator

import (
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
)

// TestIndeterminate lists what the evaluator does not model: the verdict
// is indeterminate and says why, never a guess.
func TestIndeterminate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Cluster)
		src    string
		reason string
	}{
		{"an HTTP match (application layer policy, Calico docs: network-policy/application-layer-policies)", func(c *Cluster) {
			c.Policies = []Policy{ingressGNP(t, "{action: Allow, http: {methods: [GET]}}")}
		}, "", "HTTP"},
		{"source ports: a client picks them", func(c *Cluster) {
			c.Policies = []Policy{ingressGNP(t, "{action: Allow, protocol: TCP, source: {ports: ['1024:65535']}}")}
		}, "", "source port"},
		{"doNotTrack polices host endpoints (felix/calc/event_sequencer.go)", func(c *Cluster) {
			c.Policies = []Policy{gnp(t, "raw", "{order: 1, selector: all(), doNotTrack: true, applyOnForward: true, types: [Ingress]}")}
		}, "", "doNotTrack"},
		{"preDNAT", func(c *Cluster) {
			c.Policies = []Policy{gnp(t, "nat", "{order: 1, selector: all(), preDNAT: true, applyOnForward: true, types: [Ingress]}")}
		}, "", "preDNAT"},
		{"applyOnForward", func(c *Cluster) {
			c.Policies = []Policy{gnp(t, "fwd", "{order: 1, selector: app == 'pg', applyOnForward: true, types: [Ingress]}")}
		}, "", "applyOnForward"},
		{"host endpoints: traffic from a node", func(c *Cluster) {
			c.HostEndpoints = []HostEndpoint{{Name: "n2-eth0", Node: "n2"}}
		}, "10.0.0.2", "host endpoints"},
		{"a pod whose labels are unknown: its namespace was not read", func(c *Cluster) {
			c.Namespaces = c.Namespaces[1:]
			c.Policies = []Policy{ingressGNP(t, "{action: Allow, source: {namespaceSelector: project == 'a'}}")}
		}, "", "namespace of shop/web was not read"},
		{"a pod that is not running", func(c *Cluster) {
			c.Pods[0].Node = ""
		}, "", "not scheduled"},
		{"an admin network policy", func(c *Cluster) {
			c.Unsupported = []string{"AdminNetworkPolicy block-all: Kubernetes admin network policies are not modelled"}
		}, "", "AdminNetworkPolicy"},
		{"a policy Calico rejects", func(c *Cluster) {
			c.Policies = []Policy{gnp(t, "bad", "{order: 1, selector: app == 'pg' &&, types: [Ingress]}")}
		}, "", "selector"},
		{"global() outside a rule's namespaceSelector (Calico's v3 validation refuses it)", func(c *Cluster) {
			c.Policies = []Policy{gnp(t, "bad", "{order: 1, selector: global(), types: [Ingress]}")}
		}, "", "global()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := world()
			tt.change(c)
			ix := NewIndex(c)
			src := tt.src
			if src == "" {
				src = "shop/web"
			}
			r := ix.Evaluate(endpoint(t, ix, src), endpoint(t, ix, "db/pg"), "TCP", 5432)
			if r.Verdict != Indeterminate || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("verdict %s (%s), want indeterminate because of %q", r.Verdict, r.Reason, tt.reason)
			}
		})
	}
}

// TestRulesCalicoRefuses follows Calico's v3 validation
// (libcalico-go/lib/validator/v3/validator.go: validateRule,
// validateEntityRule, validateNetworkPolicySpec,
// validateGlobalNetworkPolicySpec; from 3.32 partly CEL rules in
// api/pkg/apis/projectcalico/v3/policy_common.go): a policy holding such a
// rule never reaches Felix, so what it would do cannot be told; every
// connection it selects is indeterminate, with Calico's reason.
func TestRulesCalicoRefuses(t *testing.T) {
	v331, v332 := calico.Version{Major: 3, Minor: 31}, calico.Version{Major: 3, Minor: 32}
	tests := []struct {
		name    string
		policy  string // a GlobalNetworkPolicy's spec, or with ns a NetworkPolicy's
		ns      string
		version calico.Version
		reason  string // "" when Calico accepts the rule
	}{
		{"ports with protocol ICMP", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, protocol: ICMP, destination: {ports: [5432]}}]}", "", v332,
			"spec.ingress[0]: rules that specify ports must set protocol to TCP or UDP or SCTP"},
		{"notPorts with protocol 1", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, protocol: 1, source: {notPorts: [22]}}]}", "", v332,
			"must set protocol to TCP or UDP or SCTP"},
		{"a numeric port without protocol", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, destination: {ports: [5432]}}]}", "", v332,
			"spec.ingress[0]: rules with numeric port or port range must set protocol to TCP or UDP or SCTP"},
		{"a named port without protocol, Calico 3.31", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, destination: {ports: [postgres]}}]}", "", v331,
			"rules that specify ports must set protocol to TCP or UDP or SCTP"},
		{"a named port without protocol, Calico 3.32 accepts it", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, destination: {ports: [postgres]}}]}", "", v332, ""},
		{"a named port without protocol, Calico version unknown", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, destination: {ports: [postgres]}}]}", "", calico.Version{},
			"Calico 3.31 and earlier refuse"},
		{"services in an ingress rule's destination", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, destination: {services: {name: pg, namespace: db}}}]}", "", v332,
			"spec.ingress[0].destination.services: not allowed in ingress rule destination"},
		{"services in an egress rule's source", "{order: 1, selector: app == 'web', types: [Egress], egress: [{action: Allow, source: {services: {name: web, namespace: shop}}}]}", "", v332,
			"spec.egress[0].source.services: not allowed in egress rule source"},
		{"services without namespace in a GlobalNetworkPolicy", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, source: {services: {name: web}}}]}", "", v332,
			"spec.ingress[0].source.services.namespace: must specify a namespace"},
		{"services without name", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, source: {services: {namespace: shop}}}]}", "db", v332,
			"spec.ingress[0].source.services: must specify a service name"},
		{"services with a selector", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, source: {selector: all(), services: {name: web, namespace: shop}}}]}", "", v332,
			"cannot specify Selector/NotSelector and Services on the same rule"},
		{"services with nets", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, source: {nets: [10.0.0.0/8], services: {name: web, namespace: shop}}}]}", "", v332,
			"cannot specify Nets/NotNets and Services on the same rule"},
		{"services with destination ports", "{order: 1, selector: app == 'web', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {ports: [5432], services: {name: pg, namespace: db}}}]}", "", v332,
			"ports and notPorts cannot be specified with services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := world()
			c.Services = []ServiceEndpoints{
				{Namespace: "db", Name: "pg", Endpoints: []ServiceEndpoint{{Addr: addrs("10.42.2.10")[0], Protocol: "TCP", Port: 5432}}},
				{Namespace: "shop", Name: "web", Endpoints: []ServiceEndpoint{{Addr: addrs("10.42.1.10")[0], Protocol: "TCP", Port: 80}}},
			}
			c.Pods[1].Ports = []NamedPort{{Name: "postgres", Protocol: "TCP", Port: 5432}}
			p := gnp(t, "p", tt.policy)
			if tt.ns != "" {
				p = np(t, tt.ns, "p", tt.policy)
			}
			c.Policies = []Policy{p}
			c.CalicoVersion = tt.version
			ix := NewIndex(c)
			r := ix.Evaluate(endpoint(t, ix, "shop/web"), endpoint(t, ix, "db/pg"), "TCP", 5432)
			switch {
			case tt.reason == "" && r.Verdict == Indeterminate:
				t.Errorf("indeterminate (%s), but Calico accepts the rule", r.Reason)
			case tt.reason != "" && (r.Verdict != Indeterminate || !strings.Contains(r.Reason, tt.reason)):
				t.Errorf("verdict %s (%s), want indeterminate because %q", r.Verdict, r.Reason, tt.reason)
			}
		})
	}
}

// TestUndecidableRuleThatDoesNotMatter: a rule that cannot be decided is
// followed both ways; when both ways end alike, the verdict stands and
// the step says so.
func TestUndecidableRuleThatDoesNotMatter(t *testing.T) {
	p := ingressGNP(t, "{action: Allow, protocol: TCP, source: {ports: [1000]}}, {action: Allow}")
	ix := NewIndex(world(p))
	r := check(t, ix, "shop/web", "db/pg", 5432, Allow)
	if len(r.Ingress.Steps) == 0 || len(r.Ingress.Steps[0].Uncertain) != 1 || !strings.Contains(r.Ingress.Steps[0].Uncertain[0], "the same either way") {
		t.Errorf("steps %+v", r.Ingress.Steps)
	}
}

// TestUnknownAddress: a namespace without pods is evaluated as a pod with
// no labels and no known address. It has none of the addresses the cluster
// gave out, so rules listing single addresses of those never match it;
// wider nets cannot be decided.
func TestUnknownAddress(t *testing.T) {
	nodes := ingressGNP(t, "{action: Deny, source: {nets: [10.0.0.1/32, 10.42.1.10/32]}}, {action: Allow}")
	wide := ingressGNP(t, "{action: Deny, source: {nets: [10.0.0.0/8]}}, {action: Allow}")
	ix := NewIndex(world(nodes))
	src, note, err := ix.NamespaceEndpoint("empty")
	if err != nil || !src.Placeholder || !strings.Contains(note, "no running pod") {
		t.Fatalf("%v %q %v", src, note, err)
	}
	if r := ix.Evaluate(src, endpoint(t, ix, "db/pg"), "TCP", 5432); r.Verdict != Allow {
		t.Errorf("single allocated addresses: %s (%s)", r.Verdict, r.Reason)
	}
	ix = NewIndex(world(wide))
	src, _, _ = ix.NamespaceEndpoint("empty")
	if r := ix.Evaluate(src, endpoint(t, ix, "db/pg"), "TCP", 5432); r.Verdict != Indeterminate || !strings.Contains(r.Reason, "not known") {
		t.Errorf("wide nets: %s (%s)", r.Verdict, r.Reason)
	}
}
