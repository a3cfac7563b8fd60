package evaluator

import (
	"strings"
	"testing"
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
