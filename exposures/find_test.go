package exposures

import (
	"net/netip"
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
)

// The cluster of these tests: project p-shop (shop, shop-db: isolated),
// project p-pay (pay: isolated), the System project p-sys (kube-system),
// and sandbox in no project (open).
var namespaces = []Namespace{
	{Name: "shop", Project: "p-shop", Isolated: true, Labels: map[string]string{"team": "shop"}},
	{Name: "shop-db", Project: "p-shop", Isolated: true, Labels: map[string]string{"team": "shop"}},
	{Name: "pay", Project: "p-pay", Isolated: true, Labels: map[string]string{"team": "pay"}},
	{Name: "kube-system", Project: "p-sys"},
	{Name: "sandbox"},
}

func order(f float64) *float64 { return &f }

func knp(ns string, spec networkingv1.NetworkPolicySpec) *evaluator.Policy {
	p, _ := evaluator.FromKubernetes(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "np", Namespace: ns}, Spec: spec})
	return &p
}

func ingressFrom(peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicySpec {
	return networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: peers}}}
}

func nsSel(labels map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: labels}}
}

func gnp(tier string, o float64, action calico.Action, from calico.EntityRule) *evaluator.Policy {
	return &evaluator.Policy{Kind: evaluator.GlobalNetworkPolicy, Name: "open-up", Tier: tier, Spec: calico.GlobalNetworkPolicySpec{
		Order: order(o), NamespaceSelector: "team == 'shop'", Types: []calico.PolicyType{calico.Ingress},
		Ingress: []calico.Rule{{Action: action, Source: from}},
	}}
}

func TestFind(t *testing.T) {
	egressTo := func(cidr string) networkingv1.NetworkPolicySpec {
		return networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}}}}}
	}
	tests := []struct {
		name     string
		policy   *evaluator.Policy
		wallTier string
		want     map[string][]Exposure
	}{
		{"a Kubernetes NetworkPolicy that lets in every namespace opens shop to the other project and to namespaces in no project",
			knp("shop", ingressFrom(nsSel(nil))), "",
			map[string][]Exposure{"shop": {{Kind: "NetworkPolicy", Namespace: "shop", Name: "np", Direction: "ingress", Opens: "from namespaces of other projects (p-pay) and 1 namespaces in no project"}}}},
		{"pods of its own namespace: nothing opens", knp("shop", ingressFrom(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})), "", map[string][]Exposure{}},
		{"namespaces of the same project: nothing opens", knp("shop", ingressFrom(nsSel(map[string]string{"team": "shop"}))), "", map[string][]Exposure{}},
		{"the System project, which calico-pni lets in itself: nothing opens",
			knp("shop", ingressFrom(nsSel(map[string]string{"kubernetes.io/metadata.name": "kube-system"}))), "", map[string][]Exposure{}},
		{"egress to the internet", knp("pay", egressTo("0.0.0.0/0")), "",
			map[string][]Exposure{"pay": {{Kind: "NetworkPolicy", Namespace: "pay", Name: "np", Direction: "egress", Opens: "to addresses 0.0.0.0/0"}}}},
		{"a namespace that is not isolated has no wall to open", knp("sandbox", ingressFrom(nsSel(nil))), "", map[string][]Exposure{}},
		{"a GlobalNetworkPolicy of the default tier that lets anything in opens every namespace it selects",
			gnp("", 500, calico.Allow, calico.EntityRule{}), "",
			map[string][]Exposure{
				"shop":    {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from anywhere"}},
				"shop-db": {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from anywhere"}},
			}},
		{"a Calico policy written without types (a crd.projectcalico.org/v1 object nobody defaulted) governs both directions, as Felix reads it",
			func() *evaluator.Policy {
				p := gnp("", 500, calico.Allow, calico.EntityRule{})
				p.Spec.Types = nil
				return p
			}(), "",
			map[string][]Exposure{
				"shop":    {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from anywhere"}},
				"shop-db": {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from anywhere"}},
			}},
		{"Deny and Pass open nothing", gnp("", 500, calico.Pass, calico.EntityRule{}), "", map[string][]Exposure{}},
		{"in tier mode, a tenant's NetworkPolicy in the default tier comes after the wall", knp("shop", ingressFrom(nsSel(nil))), "calico-pni", map[string][]Exposure{}},
		{"in tier mode, a policy of a tier before calico-pni's still opens it",
			gnp("security", 100, calico.Allow, calico.EntityRule{Nets: []string{"203.0.113.0/24"}}), "calico-pni",
			map[string][]Exposure{
				"shop":    {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from addresses 203.0.113.0/24"}},
				"shop-db": {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from addresses 203.0.113.0/24"}},
			}},
		{"in tier mode, a policy of a tier after calico-pni's cannot", gnp("late", 50000, calico.Allow, calico.EntityRule{}), "calico-pni", map[string][]Exposure{}},
	}
	for _, tt := range tests {
		in := Input{
			Namespaces: namespaces, SystemProject: "p-sys", Policies: []*evaluator.Policy{tt.policy}, WallTier: tt.wallTier,
			TierOrders: map[string]*float64{"default": order(1_000_000), "calico-pni": order(10_000), "security": order(100), "late": order(50_000)},
		}
		got := Find(in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}

	// calico-pni's own policies are never exposures.
	own := gnp("", 500, calico.Allow, calico.EntityRule{})
	own.Managed = true
	if got := Find(Input{Namespaces: namespaces, Policies: []*evaluator.Policy{own}}); len(got) != 0 {
		t.Errorf("calico-pni's own policy counted: %+v", got)
	}
}

// TestNetworkSets: a rule selector also selects network sets, whose
// addresses Felix puts into the rule's IP set (felix/labelindex): a
// policy whose Allow rule selects one opens the wall to those addresses,
// even a NetworkPolicy's selector that stays in its own namespace. A
// NetworkSet's own labels win over its namespace's (pcns.*), so a tenant's
// set can pass for one of another project's namespaces.
func TestNetworkSets(t *testing.T) {
	sets := []evaluator.NetworkSet{
		{Namespace: "shop", Name: "partners", Labels: map[string]string{"role": "partner"}, Nets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		{Name: "cdn", Labels: map[string]string{"role": "cdn"}, Nets: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
		{Namespace: "pay", Name: "forged", Labels: map[string]string{"pcns.team": "shop"}, Nets: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}},
	}
	calicoNP := func(ns string, from calico.EntityRule) *evaluator.Policy {
		return &evaluator.Policy{Kind: evaluator.NetworkPolicy, Namespace: ns, Name: "np", Spec: calico.GlobalNetworkPolicySpec{
			Order: order(10), Selector: "all()", Types: []calico.PolicyType{calico.Ingress}, Ingress: []calico.Rule{{Action: calico.Allow, Source: from}}}}
	}
	tests := []struct {
		name   string
		policy *evaluator.Policy
		want   map[string][]Exposure
	}{
		{"a NetworkPolicy's selector picks a NetworkSet of its namespace", calicoNP("shop", calico.EntityRule{Selector: "role == 'partner'"}),
			map[string][]Exposure{"shop": {{Kind: "CalicoNetworkPolicy", Namespace: "shop", Name: "np", Direction: "ingress", Opens: "from the addresses of network set shop/partners (198.51.100.0/24)"}}}},
		{"a NetworkPolicy's selector does not reach a GlobalNetworkSet", calicoNP("shop", calico.EntityRule{Selector: "role == 'cdn'"}), map[string][]Exposure{}},
		{"a GlobalNetworkPolicy's selector reaches a GlobalNetworkSet", gnp("", 500, calico.Allow, calico.EntityRule{Selector: "role == 'cdn'"}),
			map[string][]Exposure{
				"shop":    {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from namespaces of other projects (p-pay) and 1 namespaces in no project and the addresses of network set cdn (203.0.113.0/24)"}},
				"shop-db": {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from namespaces of other projects (p-pay) and 1 namespaces in no project and the addresses of network set cdn (203.0.113.0/24)"}},
			}},
		{"a tenant's NetworkSet labelled as one of the project's namespaces", gnp("", 500, calico.Allow, calico.EntityRule{NamespaceSelector: "team == 'shop'"}),
			map[string][]Exposure{
				"shop":    {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from the addresses of network sets pay/forged (0.0.0.0/0), shop/partners (198.51.100.0/24)"}},
				"shop-db": {{Kind: "GlobalNetworkPolicy", Name: "open-up", Direction: "ingress", Opens: "from the addresses of network sets pay/forged (0.0.0.0/0), shop/partners (198.51.100.0/24)"}},
			}},
	}
	for _, tt := range tests {
		in := Input{Namespaces: namespaces, SystemProject: "p-sys", Policies: []*evaluator.Policy{tt.policy}, NetworkSets: sets,
			TierOrders: map[string]*float64{"default": order(1_000_000)}}
		if got := Find(in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}
