package report

import (
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
)

var rancherOwners = Owners{
	"shop/knp.default.np-default":           {Name: "Rancher's project isolation (np-default)", Description: "np-default of Rancher's project isolation: ..."},
	"shop/knp.default.np-default-allow-all": {Name: "Rancher's project isolation (np-default-allow-all)"},
}

// TestOwnersDecider names a matrix's deciders with their owners, end of
// tier kept, and leaves the others as they are, even when a name starts
// with an owned one.
func TestOwnersDecider(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop/knp.default.np-default", "shop/knp.default.np-default [Rancher's project isolation (np-default)]"},
		{"shop/knp.default.np-default (end of tier default)", "shop/knp.default.np-default [Rancher's project isolation (np-default)] (end of tier default)"},
		{"shop/knp.default.np-default-allow-all", "shop/knp.default.np-default-allow-all [Rancher's project isolation (np-default-allow-all)]"},
		{"shop/knp.default.np-defaults", "shop/knp.default.np-defaults"},
		{"pni-deny-ingress (end of tier default)", "pni-deny-ingress (end of tier default)"},
		{"no policy", "no policy"},
	}
	for _, tt := range tests {
		if got := rancherOwners.decider(tt.in); got != tt.want {
			t.Errorf("decider(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Owners(nil).decider("shop/knp.default.np-default"); got != "shop/knp.default.np-default" {
		t.Errorf("without owners: %q", got)
	}
}

// TestDeciding finds the policy that decided a side as evaluator.Decider
// names it: the rule's policy, or the policy an end of tier is charged to.
func TestDeciding(t *testing.T) {
	np := &evaluator.Policy{Kind: evaluator.KubernetesNetworkPolicy, Namespace: "shop", Name: "np-default"}
	web := &evaluator.Policy{Kind: evaluator.KubernetesNetworkPolicy, Namespace: "shop", Name: "web"}
	rule := evaluator.Side{
		Steps: []evaluator.Step{{Tier: "default", Policy: web, Rule: -1}, {Tier: "default", Policy: np, Rule: 0, Action: calico.Allow}},
		Hits:  []evaluator.Hit{{Kind: "NetworkPolicy", Namespace: "shop", Name: "np-default", Tier: "default", Action: calico.Allow}},
	}
	if got := deciding(&rule); got != np {
		t.Errorf("rule: %v", got)
	}
	end := evaluator.Side{
		Steps: []evaluator.Step{{Tier: "default", Policy: web, Rule: -1}, {Tier: "default", Policy: np, Rule: -1}, {Tier: "default", EndOfTier: true, Rule: -1, Action: calico.Deny}},
		Hits:  []evaluator.Hit{{Kind: "EndOfTier", Tier: "default", Action: calico.Deny, RuleIndex: -1}},
	}
	if got := deciding(&end); got != np {
		t.Errorf("end of tier: %v", got)
	}
	profile := evaluator.Side{Hits: []evaluator.Hit{{Kind: "Profile"}}}
	if got := deciding(&profile); got != nil {
		t.Errorf("profile: %v", got)
	}
}
