package objects

import (
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// TestPreview: calico-pni's policies and namespace labels replace
// whatever calico-pni wrote before; the users' policies stay.
func TestPreview(t *testing.T) {
	set := readArticle(t, true)
	users := len(set.Cluster.Policies)
	set.Cluster.Policies = append(set.Cluster.Policies, evaluator.Policy{Kind: evaluator.GlobalNetworkPolicy, Name: "pni-old", Managed: true})
	for i := range set.Cluster.Namespaces {
		if set.Cluster.Namespaces[i].Name == "sandbox" {
			set.Cluster.Namespaces[i].Labels = map[string]string{policies.IsolatedLabel: "true", "team": "qa"}
		}
	}
	c, d, err := Preview(set, config.Default(), calico.Version{Major: 3, Minor: 28})
	if err != nil {
		t.Fatal(err)
	}
	managed := 0
	for _, p := range c.Policies {
		if p.Name == "pni-old" {
			t.Error("the old calico-pni policy is still there")
		}
		if p.Managed {
			managed++
		}
	}
	if managed != len(d.Policies) || len(c.Policies) != users+len(d.Policies) {
		t.Errorf("%d policies (%d calico-pni's), want %d users' and %d calico-pni's", len(c.Policies), managed, users, len(d.Policies))
	}
	for _, ns := range c.Namespaces {
		switch ns.Name {
		case "sandbox":
			if ns.Labels[policies.IsolatedLabel] != "" || ns.Labels["team"] != "qa" {
				t.Errorf("sandbox labels %v", ns.Labels)
			}
		case "shop":
			if ns.Labels[policies.IsolatedLabel] != "true" || ns.Labels[policies.ProjectLabel] != "p-b6jcw" {
				t.Errorf("shop labels %v", ns.Labels)
			}
		}
	}
	if _, _, err := Preview(readArticle(t, false), config.Default(), calico.Version{}); err == nil {
		t.Error("a preview without the snapshot objects succeeded")
	}
}

// TestGeneratedTier: a policy the generator puts in a tier is evaluated
// in that tier.
func TestGeneratedTier(t *testing.T) {
	p := generated(calico.Policy{Name: "pni-x", Spec: calico.GlobalNetworkPolicySpec{Tier: "calico-pni"}})
	if p.TierName() != "calico-pni" || !p.Managed || p.Kind != evaluator.GlobalNetworkPolicy {
		t.Errorf("%+v", p)
	}
	if q := generated(calico.Policy{Name: "pni-y", Namespace: "shop", Spec: calico.GlobalNetworkPolicySpec{Tier: "default"}}); q.Tier != "" || q.Kind != evaluator.NetworkPolicy || q.Namespace != "shop" {
		t.Errorf("%+v", q)
	}
}
