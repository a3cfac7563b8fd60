package replay

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// A small cluster for the evaluator's cases: namespaces a and b, a pod in
// each, and objects each case adds.
const baseObjects = `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: {team: red}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b, labels: {team: blue}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: t}}
`

var (
	podA = &Endpoint{Name: "a/pa", Addr: netip.MustParseAddr("10.1.0.1"), Node: "n1", Pod: &Pod{
		Namespace: "a", Name: "pa", Labels: map[string]string{"app": "front", "pcns.team": "blue"}, ServiceAccount: "front",
		ServiceAccountLabels: map[string]string{"role": "web"}, IPs: []netip.Addr{netip.MustParseAddr("10.1.0.1")}, Node: "n1",
		Ports: []NamedPort{{Name: "http", Protocol: "TCP", Port: 8080}}}}
	podB = &Endpoint{Name: "b/pb", Addr: netip.MustParseAddr("10.1.0.2"), Node: "n2", Pod: &Pod{
		Namespace: "b", Name: "pb", Labels: map[string]string{"app": "back"}, ServiceAccount: "default",
		IPs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}, Node: "n2",
		Ports: []NamedPort{{Name: "http", Protocol: "TCP", Port: 9090}, {Name: "dns", Protocol: "UDP", Port: 53}}}}
	partner = &Endpoint{Name: "partner", Addr: netip.MustParseAddr("203.0.113.5")}
	outside = &Endpoint{Name: "outside", Addr: netip.MustParseAddr("198.51.100.7")}
	nodeN2  = &Endpoint{Name: "n2", Addr: netip.MustParseAddr("10.0.0.2"), Node: "n2"}
)

// stateOf is the small cluster with more list items.
func stateOf(t testing.TB, items string) *State {
	t.Helper()
	s := NewState()
	if strings.TrimSpace(items) == "" {
		items = " []"
	}
	for _, doc := range []string{baseObjects, "apiVersion: v1\nkind: List\nitems:" + items} {
		objs, err := testbed.DecodeObjects([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddObjects(objs); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// denyAllIngressB selects pb for ingress, so that its default deny holds.
const denyAllIngressB = `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.z-select-b}
  spec: {order: 9000, namespaceSelector: team == 'blue', types: [Ingress]}
`

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name     string
		objects  string // list items
		conn     Conn
		want     Verdict
		decision string // a part of the decision
	}{
		{"no policy: the profile allows", ``, Conn{podA, podB, "TCP", 80}, Allowed, "profile"},
		{"a selecting policy without rules denies at the end of its tier", denyAllIngressB, Conn{podA, podB, "TCP", 80}, Denied, "end of tier default"},
		{"a pod's own pcns. labels are stripped", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-blue}
  spec: {order: 10, namespaceSelector: team == 'blue', types: [Ingress], ingress: [{action: Allow, source: {namespaceSelector: team == 'blue'}}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier"},
		{"service account labels", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-web}
  spec: {order: 10, namespaceSelector: team == 'blue', types: [Ingress], ingress: [{action: Allow, source: {serviceAccounts: {selector: role == 'web'}}}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "from-web"},
		{"a GlobalNetworkSet is matched by a rule selector", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkSet
  metadata: {name: partners, labels: {kind: partners}}
  spec: {nets: [203.0.113.0/24]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-partners}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {selector: kind == 'partners'}}]}
`, Conn{partner, podB, "TCP", 80}, Allowed, "from-partners"},
		{"an address no set covers is not matched", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkSet
  metadata: {name: partners, labels: {kind: partners}}
  spec: {nets: [203.0.113.0/24]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-partners}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {selector: kind == 'partners'}}]}
`, Conn{outside, podB, "TCP", 80}, Denied, "end of tier"},
		{"notSelector all() excludes what a tenant's NetworkSet covers", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: NetworkSet
  metadata: {name: mine, namespace: t}
  spec: {nets: [198.51.100.0/24]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-outside}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {notSelector: all()}}]}
`, Conn{outside, podB, "TCP", 80}, Denied, "end of tier"},
		{"notSelector on the pods' orchestrator label admits what a tenant's NetworkSet covers", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: NetworkSet
  metadata: {name: mine, namespace: t}
  spec: {nets: [198.51.100.0/24]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-outside}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {notSelector: projectcalico.org/orchestrator == 'k8s'}}]}
`, Conn{outside, podB, "TCP", 80}, Allowed, "from-outside"},
		{"notSelector on the pods' orchestrator label excludes every pod", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-outside}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {notSelector: projectcalico.org/orchestrator == 'k8s'}}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier"},
		{"notSelector all() admits an address no set covers", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-outside}
  spec: {order: 10, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {notSelector: all()}}]}
`, Conn{outside, podB, "TCP", 80}, Allowed, "from-outside"},
		{"a namespaced policy's rule selector does not reach another namespace's NetworkSet", denyAllIngressB + `
- apiVersion: crd.projectcalico.org/v1
  kind: NetworkSet
  metadata: {name: mine, namespace: t, labels: {kind: partners}}
  spec: {nets: [203.0.113.0/24]}
- apiVersion: crd.projectcalico.org/v1
  kind: NetworkPolicy
  metadata: {name: default.from-partners, namespace: b}
  spec: {order: 10, types: [Ingress], ingress: [{action: Allow, source: {selector: kind == 'partners'}}]}
`, Conn{partner, podB, "TCP", 80}, Denied, "end of tier"},
		{"a tier whose default action is Pass hands on to the next tier", `
- apiVersion: crd.projectcalico.org/v1
  kind: Tier
  metadata: {name: first}
  spec: {order: 100, defaultAction: Pass}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: first.select-b}
  spec: {tier: first, order: 1, selector: app == 'back', types: [Ingress]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "Pass, then the namespace's profile"},
		{"a tier's default Deny", `
- apiVersion: crd.projectcalico.org/v1
  kind: Tier
  metadata: {name: first}
  spec: {order: 100}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: first.select-b}
  spec: {tier: first, order: 1, selector: app == 'back', types: [Ingress]}
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier first"},
		{"a tier without order comes last", `
- apiVersion: crd.projectcalico.org/v1
  kind: Tier
  metadata: {name: aaa}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: aaa.deny}
  spec: {tier: aaa, selector: app == 'back', types: [Ingress], ingress: [{action: Deny}]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.allow}
  spec: {selector: app == 'back', types: [Ingress], ingress: [{action: Allow}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "tier default"},
		{"inside a tier: by order, none last", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.a-unordered-deny}
  spec: {selector: app == 'back', types: [Ingress], ingress: [{action: Deny}]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.z-allow}
  spec: {order: 5000, selector: app == 'back', types: [Ingress], ingress: [{action: Allow}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "z-allow"},
		{"inside a tier: equal orders by name", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.b-allow}
  spec: {order: 5, selector: app == 'back', types: [Ingress], ingress: [{action: Allow}]}
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.a-deny}
  spec: {order: 5, selector: app == 'back', types: [Ingress], ingress: [{action: Deny}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "a-deny"},
		{"Log goes on to the next rule", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.log-then-deny}
  spec: {selector: app == 'back', types: [Ingress], ingress: [{action: Log}, {action: Deny}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "Deny rule 1"},
		{"a v1 policy without types governs both directions", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.ingress-only}
  spec: {selector: app == 'front', ingress: [{action: Allow}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "egress: end of tier default"},
		{"a v3 policy without types is defaulted to its rules' directions", `
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: ingress-only}
  spec: {selector: app == 'front', ingress: [{action: Allow}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "profile"},
		{"a source Service matches its endpoints' addresses", denyAllIngressB + `
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: front-x, namespace: a, labels: {kubernetes.io/service-name: front}}
  addressType: IPv4
  endpoints: [{addresses: [10.1.0.1]}]
  ports: [{port: 8080}]
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.from-front}
  spec: {order: 1, selector: app == 'back', types: [Ingress], ingress: [{action: Allow, source: {services: {name: front, namespace: a}}}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "from-front"},
		{"a destination Service matches its endpoints' ports", `
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: back-x, namespace: b, labels: {kubernetes.io/service-name: back}}
  addressType: IPv4
  endpoints: [{addresses: [10.1.0.2]}]
  ports: [{port: 9090, protocol: TCP}]
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.to-back}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {services: {name: back, namespace: b}}}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier"},
		{"a named destination port resolves on the destination pod", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.to-http}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]}
`, Conn{podA, podB, "TCP", 9090}, Allowed, "to-http"},
		{"a named port of another number does not match", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.to-http}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]}
`, Conn{podA, podB, "TCP", 8080}, Denied, "end of tier"},
		{"a named port needs the rule's protocol", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.to-dns}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {ports: [dns]}}]}
`, Conn{podA, podB, "UDP", 53}, Denied, "end of tier"},
		{"port ranges and notPorts", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.range}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, protocol: TCP, destination: {ports: ["8000:9000"], notPorts: [8443]}}]}
`, Conn{podA, podB, "TCP", 8443}, Denied, "end of tier"},
		{"notProtocol", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.not-udp}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, notProtocol: UDP}]}
`, Conn{podA, podB, "UDP", 53}, Denied, "end of tier"},
		{"ipVersion 6 does not match IPv4 traffic", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.v6}
  spec: {order: 1, selector: app == 'front', types: [Egress], egress: [{action: Allow, ipVersion: 6}]}
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier"},
		{"a Kubernetes NetworkPolicy: ipBlock except", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: from-outside, namespace: b}
  spec:
    podSelector: {}
    ingress: [{from: [{ipBlock: {cidr: 198.51.0.0/16, except: [198.51.100.0/24]}}]}]
`, Conn{outside, podB, "TCP", 80}, Denied, "knp.default.from-outside"},
		{"a Kubernetes NetworkPolicy: port and endPort", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: ports, namespace: b}
  spec:
    podSelector: {matchLabels: {app: back}}
    ingress: [{ports: [{port: 9000, endPort: 9100}]}]
`, Conn{podA, podB, "TCP", 9090}, Allowed, "knp.default.ports"},
		{"a Kubernetes NetworkPolicy: TCP unless said", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: ports, namespace: b}
  spec:
    podSelector: {matchLabels: {app: back}}
    ingress: [{ports: [{port: 53}]}]
`, Conn{podA, podB, "UDP", 53}, Denied, "end of tier"},
		{"a Kubernetes NetworkPolicy: a pod selector stays in the namespace", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: from-front, namespace: b}
  spec:
    podSelector: {}
    ingress: [{from: [{podSelector: {matchLabels: {app: front}}}]}]
`, Conn{podA, podB, "TCP", 80}, Denied, "end of tier"},
		{"a Kubernetes NetworkPolicy: namespace and pod selectors", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: from-front, namespace: b}
  spec:
    podSelector: {}
    ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [red]}]}, podSelector: {matchLabels: {app: front}}}]}]
`, Conn{podA, podB, "TCP", 80}, Allowed, "knp.default.from-front"},
		{"a Kubernetes NetworkPolicy's peers are pods only: not network sets", `
- apiVersion: crd.projectcalico.org/v1
  kind: NetworkSet
  metadata: {name: mine, namespace: t}
  spec: {nets: [198.51.100.0/24]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: from-all-namespaces, namespace: b}
  spec:
    podSelector: {}
    ingress: [{from: [{namespaceSelector: {}}]}]
`, Conn{outside, podB, "TCP", 80}, Denied, "end of tier"},
		{"a Kubernetes NetworkPolicy's egress, with policyTypes defaulted", `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: out, namespace: a}
  spec:
    podSelector: {}
    egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}]}]
`, Conn{podA, outside, "TCP", 443}, Denied, "knp.default.out"},
		{"staged policies are never enforced", `
- apiVersion: crd.projectcalico.org/v1
  kind: StagedGlobalNetworkPolicy
  metadata: {name: default.deny-all}
  spec: {order: 1, selector: all(), types: [Ingress, Egress]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "profile"},
		{"a broken policy that selects neither end does not matter", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.elsewhere}
  spec: {selector: app == 'other', types: [Ingress], ingress: [{action: Allow, http: {methods: [GET]}}]}
`, Conn{podA, podB, "TCP", 80}, Allowed, "profile"},
	}
	for _, tt := range tests {
		ix := NewIndex(stateOf(t, tt.objects))
		d, err := ix.Evaluate(tt.conn)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if d.Verdict != tt.want || !strings.Contains(d.String(), tt.decision) {
			t.Errorf("%s: %s is %s; want %s, decided by %q", tt.name, tt.conn, d, tt.want, tt.decision)
		}
	}
}

// What the evaluator does not model is an error naming it, never a
// verdict.
func TestEvaluateRefuses(t *testing.T) {
	policy := func(spec string) string {
		return `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: default.p}
  spec: ` + spec
	}
	tests := []struct {
		name, objects string
		conn          Conn
		err           string
	}{
		{"preDNAT", policy("{selector: all(), preDNAT: true, applyOnForward: true, types: [Ingress]}"), Conn{podA, podB, "TCP", 80}, "preDNAT"},
		{"doNotTrack", policy("{selector: all(), doNotTrack: true, types: [Ingress]}"), Conn{podA, podB, "TCP", 80}, "doNotTrack"},
		{"ICMP", policy("{selector: all(), types: [Ingress], ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8}}]}"), Conn{podA, podB, "TCP", 80}, "icmp"},
		{"HTTP", policy("{selector: all(), types: [Ingress], ingress: [{action: Allow, http: {methods: [GET]}}]}"), Conn{podA, podB, "TCP", 80}, "http"},
		{"source ports", policy("{selector: all(), types: [Ingress], ingress: [{action: Allow, protocol: TCP, source: {ports: [1234]}}]}"), Conn{podA, podB, "TCP", 80}, "source ports"},
		{"an unknown field", policy("{selector: all(), types: [Ingress], sourceLabels: {x: y}}"), Conn{podA, podB, "TCP", 80}, "unknown field"},
		{"a selector Calico refuses", policy("{selector: app = 'x', types: [Ingress]}"), Conn{podA, podB, "TCP", 80}, "selector"},
		{"ports without a protocol", policy("{selector: all(), types: [Ingress], ingress: [{action: Allow, destination: {ports: [80]}}]}"), Conn{podA, podB, "TCP", 80}, "protocol"},
		{"a tier prefix that disagrees with spec.tier", policy("{tier: other, selector: all(), types: [Ingress]}"), Conn{podA, podB, "TCP", 80}, "tier prefix"},
		{"a policy in a tier without a Tier", `
- apiVersion: crd.projectcalico.org/v1
  kind: GlobalNetworkPolicy
  metadata: {name: ghost.p}
  spec: {tier: ghost, selector: all(), types: [Ingress]}
`, Conn{podA, podB, "TCP", 80}, "no Tier object"},
		{"a host's traffic to its own pods", ``, Conn{nodeN2, podB, "TCP", 80}, "same node"},
		{"two plain addresses", ``, Conn{outside, partner, "TCP", 80}, "plain addresses"},
		{"ICMP traffic", ``, Conn{podA, podB, "ICMP", 0}, "TCP, UDP or SCTP"},
	}
	for _, tt := range tests {
		ix := NewIndex(stateOf(t, tt.objects))
		d, err := ix.Evaluate(tt.conn)
		if err == nil {
			t.Errorf("%s: %s is %s; want an error", tt.name, tt.conn, d)
			continue
		}
		if !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: the error %q does not say %q", tt.name, err, tt.err)
		}
	}
	// A HostEndpoint cannot even be loaded.
	objs, err := testbed.DecodeObjects([]byte(`{apiVersion: crd.projectcalico.org/v1, kind: HostEndpoint, metadata: {name: h}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := NewState().AddObjects(objs); err == nil || !strings.Contains(err.Error(), "host endpoints") {
		t.Errorf("a HostEndpoint: %v", err)
	}
}
