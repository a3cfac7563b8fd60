package flows

import "fmt"

// PolicyString names what a hit stands for, one way for flow logs and
// for calico-pni's evaluator, so that the two can be compared:
//
//	GlobalNetworkPolicy pni-tier-allow-dns (tier calico-pni)
//	NetworkPolicy shop/allow-web (tier default)
//	end of tier calico-pni
//	profile kns.shop
//
// Kinds are Goldmane's (the evaluator's Hit.Kind uses the same names);
// names lose a "<tier>." or "staged:" prefix, as in flow logs; a tier left
// out is the default tier. The trigger of an end of tier is left out:
// Calico charges the default action to a policy of the tier by rules that
// differ between versions, while the tier that ended decides the same.
func PolicyString(h Hit) string {
	tier := h.Tier
	if tier == "" {
		tier = "default"
	}
	switch h.Kind {
	case KindEndOfTier:
		return "end of tier " + tier
	case KindProfile:
		return "profile " + h.Name
	}
	name := policyName(h.Kind, tier, h.Name)
	if h.Namespace != "" {
		name = h.Namespace + "/" + name
	}
	return fmt.Sprintf("%s %s (tier %s)", h.Kind, name, tier)
}
