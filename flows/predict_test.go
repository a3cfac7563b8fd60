package flows

import (
	"testing"
)

func TestCompare(t *testing.T) {
	wallAllowsDNS := []Hit{{Kind: "GlobalNetworkPolicy", Name: "pni-tier-allow-dns", Tier: "calico-pni", Action: "allow", RuleIndex: 0}}
	wallDenies := []Hit{{Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1,
		Trigger: &Hit{Kind: "GlobalNetworkPolicy", Name: "pni-tier-deny-ingress", Tier: "calico-pni"}}}
	dns := flowAt("shop", "kube-system", 53, "allow", wallAllowsDNS, nil, t0)
	dns.Reporter = ReporterSrc
	denied := flowAt("report", "shop", 5432, "deny", wallDenies, nil, t0)
	open := flowAt("report", "open", 80, "allow", profileAllow("open"), nil, t0)
	unknown := flowAt("report", "shop", 6379, "allow", profileAllow("shop"), nil, t0)

	predictions := map[int]struct {
		action, policy string
		ok             bool
	}{
		53:   {"allow", "GlobalNetworkPolicy pni-tier-allow-dns (tier calico-pni)", true},
		5432: {"Allow", "profile kns.shop", true}, // the evaluator thinks it is allowed
		80:   {"allow", "profile kns.open", true},
		6379: {"indeterminate", "", true},
	}
	predict := func(f Flow) (string, string, bool) {
		p := predictions[f.Port]
		return p.action, p.policy, p.ok
	}
	enforced := func(ns string) bool { return ns == "shop" }

	c := Compare([]Flow{dns, denied, open, unknown}, predict, enforced)
	if c.Compared != 2 || c.Agreed != 1 || c.Unpredicted != 1 || len(c.Disagreements) != 1 {
		t.Fatalf("comparison %+v: want dns (egress of shop) agreed, 5432 disagreed, 6379 unpredicted, open skipped", c)
	}
	d := c.Disagreements[0]
	if d.Flow.Port != 5432 || d.Observed != (Verdict{"deny", "end of tier calico-pni"}) || d.Predicted != (Verdict{"allow", "profile kns.shop"}) {
		t.Errorf("disagreement %+v", d)
	}
}

// The same action decided by another policy is a disagreement; an end of
// tier is compared by its tier, whatever the trigger.
func TestCompareFlowPolicies(t *testing.T) {
	f := flowAt("report", "shop", 5432, "deny", []Hit{{Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1,
		Trigger: &Hit{Kind: "GlobalNetworkPolicy", Name: "pni-tier-deny-ingress", Tier: "calico-pni"}}}, nil, t0)
	tests := []struct {
		action, policy string
		agrees         bool
	}{
		{"deny", "end of tier calico-pni", true},
		{"deny", "", true}, // no deciding policy predicted: the action decides
		{"deny", "end of tier default", false},
		{"deny", "NetworkPolicy shop/deny-all (tier default)", false},
		{"allow", "end of tier calico-pni", false},
	}
	for _, tt := range tests {
		_, predicted, agrees := CompareFlow(f, func(Flow) (string, string, bool) { return tt.action, tt.policy, true })
		if !predicted || agrees != tt.agrees {
			t.Errorf("%s by %q: predicted %v, agrees %v, want %v", tt.action, tt.policy, predicted, agrees, tt.agrees)
		}
	}
	if _, predicted, _ := CompareFlow(f, func(Flow) (string, string, bool) { return "", "", false }); predicted {
		t.Error("no prediction counted as one")
	}
}
