package evaluator

import (
	"encoding/json"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
)

func kubernetesPolicy(t *testing.T, text string) *networkingv1.NetworkPolicy {
	t.Helper()
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(text), &np); err != nil {
		t.Fatal(err)
	}
	return &np
}

// TestFromKubernetes follows Calico's conversion of Kubernetes
// NetworkPolicies (libcalico-go/lib/backend/k8s/conversion/conversion.go:
// K8sNetworkPolicyToCalico, k8sRuleToCalico, k8sSelectorToCalico,
// k8sPeerToCalicoFields): the rule indices below are the ones Calico's
// flow logs report.
func TestFromKubernetes(t *testing.T) {
	np := kubernetesPolicy(t, `
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}, matchExpressions: [{key: tier, operator: NotIn, values: [test]}]}
  ingress:
  - from:
    - podSelector: {matchLabels: {role: lb}}
    - namespaceSelector: {}
    ports:
    - {port: 8080}
    - {port: 53, protocol: UDP}
    - {port: http}
    - {port: 9000, endPort: 9100}
  - from:
    - ipBlock: {cidr: 10.1.2.3/16, except: [10.1.5.0/24]}
  egress:
  - to: [{namespaceSelector: {matchLabels: {team: db}}, podSelector: {}}]
    ports: [{protocol: SCTP}]
`)
	p, notes := FromKubernetes(np)
	if len(notes) > 0 {
		t.Fatalf("notes: %v", notes)
	}
	got, _ := json.Marshal(p.Spec)
	want := `{"order":1000,"selector":"projectcalico.org/orchestrator == 'k8s' \u0026\u0026 app == 'web' \u0026\u0026 tier not in {'test'}","types":["Ingress"],` +
		`"ingress":[` +
		// Protocol TCP first (sorted), one rule per peer.
		`{"action":"Allow","protocol":"TCP","source":{"selector":"projectcalico.org/orchestrator == 'k8s' \u0026\u0026 role == 'lb'"},"destination":{"ports":["http",8080,"9000:9100"]}},` +
		`{"action":"Allow","protocol":"TCP","source":{"selector":"projectcalico.org/orchestrator == 'k8s'","namespaceSelector":"all()"},"destination":{"ports":["http",8080,"9000:9100"]}},` +
		`{"action":"Allow","protocol":"UDP","source":{"selector":"projectcalico.org/orchestrator == 'k8s' \u0026\u0026 role == 'lb'"},"destination":{"ports":[53]}},` +
		`{"action":"Allow","protocol":"UDP","source":{"selector":"projectcalico.org/orchestrator == 'k8s'","namespaceSelector":"all()"},"destination":{"ports":[53]}},` +
		`{"action":"Allow","source":{"nets":["10.1.0.0/16"],"notNets":["10.1.5.0/24"]}}],` +
		`"egress":[{"action":"Allow","protocol":"SCTP","destination":{"selector":"projectcalico.org/orchestrator == 'k8s'","namespaceSelector":"team == 'db'"}}]}`
	if string(got) != want {
		t.Errorf("converted spec:\n got %s\nwant %s", got, want)
	}
	if p.Kind != KubernetesNetworkPolicy || p.CalicoName() != "knp.default.web" || p.FlowLogKind() != "NetworkPolicy" || p.FlowLogName() != "web" || p.TierName() != "default" {
		t.Errorf("names: %s %s %s %s", p.Kind, p.CalicoName(), p.FlowLogKind(), p.FlowLogName())
	}
}

// TestKubernetesPolicyTypes: policyTypes as given; without them, Ingress
// only, even when egress rules are present (K8sNetworkPolicyToCalico).
func TestKubernetesPolicyTypes(t *testing.T) {
	tests := []struct {
		text string
		want []calico.PolicyType
	}{
		{"metadata: {name: a, namespace: x}\nspec: {podSelector: {}}", []calico.PolicyType{calico.Ingress}},
		{"metadata: {name: a, namespace: x}\nspec: {podSelector: {}, egress: [{}]}", []calico.PolicyType{calico.Ingress}},
		{"metadata: {name: a, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress]}", []calico.PolicyType{calico.Egress}},
		{"metadata: {name: a, namespace: x}\nspec: {podSelector: {}, policyTypes: [Egress, Ingress]}", []calico.PolicyType{calico.Ingress, calico.Egress}},
	}
	for _, tt := range tests {
		p, _ := FromKubernetes(kubernetesPolicy(t, tt.text))
		if len(p.Spec.Types) != len(tt.want) || (len(tt.want) > 0 && p.Spec.Types[0] != tt.want[0]) || (len(tt.want) > 1 && p.Spec.Types[1] != tt.want[1]) {
			t.Errorf("%s: types %v, want %v", tt.text, p.Spec.Types, tt.want)
		}
	}
}

// TestKubernetesPolicyEvaluated: a Kubernetes NetworkPolicy in the
// default tier at order 1000; its pod selector and its podSelector peers
// stay in its namespace, a default-deny policy (no rules) ends the tier.
func TestKubernetesPolicyEvaluated(t *testing.T) {
	allowShop, _ := FromKubernetes(kubernetesPolicy(t, `
metadata: {name: from-shop, namespace: db}
spec:
  podSelector: {matchLabels: {app: pg}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {project: a}}}], ports: [{port: 5432}]}]`))
	podOnly, _ := FromKubernetes(kubernetesPolicy(t, `
metadata: {name: same-ns, namespace: db}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]`))
	denyAll, _ := FromKubernetes(kubernetesPolicy(t, `
metadata: {name: deny-all, namespace: db}
spec: {podSelector: {}}`))

	r := check(t, NewIndex(world(allowShop)), "shop/web", "db/pg", 5432, Allow)
	want := Hit{Kind: "NetworkPolicy", Namespace: "db", Name: "from-shop", Tier: "default", Action: calico.Allow, PolicyIndex: 0, RuleIndex: 0}
	if len(r.Ingress.Hits) != 1 || r.Ingress.Hits[0] != want {
		t.Errorf("hits %+v", r.Ingress.Hits)
	}
	check(t, NewIndex(world(allowShop)), "shop/web", "db/pg", 80, Deny)
	check(t, NewIndex(world(podOnly)), "shop/web", "db/pg", 5432, Deny)
	r = check(t, NewIndex(world(denyAll)), "shop/web", "db/pg", 5432, Deny)
	if r.Ingress.Hits[0].Kind != "EndOfTier" || r.Ingress.Hits[0].Trigger.Name != "deny-all" || r.Ingress.Hits[0].Trigger.Kind != "NetworkPolicy" {
		t.Errorf("hits %+v", r.Ingress.Hits)
	}
}
