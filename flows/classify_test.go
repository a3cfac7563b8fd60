package flows

import (
	"testing"
)

func TestClassify(t *testing.T) {
	egressWall := []Hit{{
		Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1,
		Trigger: &Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-deny-egress", Tier: "calico-pni"},
	}}
	toInternet := flowAt("shop", "", 443, "allow", profileAllow("shop"), egressWall, t0)
	toInternet.Reporter = ReporterSrc
	toInternet.Dst = Endpoint{Type: Network, Name: "pub"}

	tests := []struct {
		name string
		flow Flow
		ok   bool
		want Key
	}{
		{
			name: "tier mode: the end of calico-pni's tier, charged to the staged ingress wall",
			flow: pendingDeny("data", "shop", 5432, t0), ok: true,
			want: Key{Cause: CauseWall, Direction: Ingress, Namespace: "shop", PeerNamespace: "data", PeerType: WorkloadEndpoint,
				Port: 5432, Protocol: "TCP", Policy: "pni-tier-staged-deny-ingress"},
		},
		{
			name: "default-tier mode: the end of the default tier, charged to the staged wall",
			flow: flowAt("data", "shop", 80, "allow", profileAllow("shop"), defaultTierWallDeny, t0), ok: true,
			want: Key{Cause: CauseWall, Direction: Ingress, Namespace: "shop", PeerNamespace: "data", PeerType: WorkloadEndpoint,
				Port: 80, Protocol: "TCP", Policy: "pni-staged-deny-ingress"},
		},
		{
			name: "egress to the internet, seen at the source",
			flow: toInternet, ok: true,
			want: Key{Cause: CauseWall, Direction: Egress, Namespace: "shop", PeerType: Network, PeerName: "pub",
				Port: 443, Protocol: "TCP", Policy: "pni-tier-staged-deny-egress"},
		},
		{
			name: "the end of calico-pni's tier without a trigger is still the walls'",
			flow: flowAt("data", "shop", 80, "allow", nil, []Hit{{Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1}}, t0), ok: true,
			want: Key{Cause: CauseWall, Direction: Ingress, Namespace: "shop", PeerNamespace: "data", PeerType: WorkloadEndpoint,
				Port: 80, Protocol: "TCP"},
		},
		{
			name: "tier mode: the walls pass, a tenant's staged policy in the default tier denies",
			flow: flowAt("data", "shop", 80, "allow", profileAllow("shop"), tenantDeny("shop"), t0), ok: true,
			want: Key{Cause: CauseTenant, Direction: Ingress, Namespace: "shop", PeerNamespace: "data", PeerType: WorkloadEndpoint,
				Port: 80, Protocol: "TCP", Policy: "StagedNetworkPolicy shop/lockdown (tier default)"},
		},
		{
			name: "Felix denies already: enforcing the walls changes nothing",
			flow: flowAt("data", "shop", 80, "deny", []Hit{{Kind: "NetworkPolicy", Namespace: "shop", Name: "deny-all", Tier: "default", Action: "deny"}}, tierWallDeny, t0),
		},
		{
			name: "the walls would allow",
			flow: allowed("data", "shop", 80, t0),
		},
		{
			name: "no pending trace",
			flow: flowAt("data", "shop", 80, "allow", profileAllow("shop"), nil, t0),
		},
		{
			name: "the end of the default tier charged to a tenant's staged policy is not the walls'",
			flow: flowAt("data", "shop", 80, "allow", profileAllow("shop"), []Hit{{
				Kind: "EndOfTier", Tier: "default", Action: "deny", RuleIndex: -1,
				Trigger: &Hit{Kind: "StagedNetworkPolicy", Namespace: "shop", Name: "pni-staged-lookalike", Tier: "default"},
			}}, t0),
		},
		{
			name: "an enforced policy named like a staged wall is not one",
			flow: flowAt("data", "shop", 80, "allow", profileAllow("shop"), []Hit{
				{Kind: "GlobalNetworkPolicy", Name: "pni-staged-deny-ingress", Tier: "default", Action: "deny"},
			}, t0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Classify(tt.flow)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Classify = %+v, %v\nwant        %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestIsStagedWall(t *testing.T) {
	tests := []struct {
		hit  Hit
		want bool
	}{
		{Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-staged-deny-ingress"}, true},
		{Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-project-p-b6jcw"}, true},
		{Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-deny-ingress"}, false},
		{Hit{Kind: "GlobalNetworkPolicy", Name: "pni-tier-staged-deny-ingress"}, false},
		{Hit{Kind: "StagedNetworkPolicy", Namespace: "shop", Name: "pni-staged-deny-ingress"}, false},
	}
	for _, tt := range tests {
		if got := IsStagedWall(tt.hit); got != tt.want {
			t.Errorf("IsStagedWall(%+v) = %v, want %v", tt.hit, got, tt.want)
		}
	}
}
