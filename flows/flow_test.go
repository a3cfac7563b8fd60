package flows

import (
	"reflect"
	"testing"
	"time"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

func TestFromProto(t *testing.T) {
	p := &pb.Flow{
		Key: &pb.FlowKey{
			SourceName: "web-7c9f-", SourceNamespace: "shop", SourceType: pb.EndpointType_WorkloadEndpoint,
			DestName: "pub", DestType: pb.EndpointType_Network, DestPort: 443, Proto: "TCP",
			DestServiceName: "api", DestServiceNamespace: "ext", DestServicePortName: "https", DestServicePort: 8443,
			Reporter: pb.Reporter_Src, Action: pb.Action_Allow,
			Policies: &pb.PolicyTrace{
				EnforcedPolicies: []*pb.PolicyHit{{Kind: pb.PolicyKind_Profile, Name: "kns.shop", Action: pb.Action_Allow}},
				PendingPolicies: []*pb.PolicyHit{{
					Kind: pb.PolicyKind_EndOfTier, Tier: "calico-pni", Action: pb.Action_Deny, PolicyIndex: 0, RuleIndex: -1,
					// Felix's internal name, should a Goldmane pass it on.
					Trigger: &pb.PolicyHit{Kind: pb.PolicyKind_StagedGlobalNetworkPolicy, Name: "staged:calico-pni.pni-tier-staged-deny-egress", Tier: "calico-pni"},
				}},
			},
		},
		StartTime: 1_772_445_600, EndTime: 1_772_445_615,
		SourceLabels: []string{"app=web", "tier=front=end"}, NumConnectionsStarted: 4,
	}
	want := Flow{
		Src:      Endpoint{Namespace: "shop", Name: "web-7c9f-", Type: WorkloadEndpoint, Labels: map[string]string{"app": "web", "tier": "front=end"}},
		Dst:      Endpoint{Name: "pub", Type: Network},
		Port:     443,
		Protocol: "TCP",
		Service:  Service{Namespace: "ext", Name: "api", PortName: "https", Port: 8443},
		Reporter: ReporterSrc,
		Action:   "allow",
		Enforced: []Hit{{Kind: "Profile", Name: "kns.shop", Action: "allow"}},
		Pending: []Hit{{Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1,
			Trigger: &Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-deny-egress", Tier: "calico-pni"}}},
		Start:       time.Unix(1_772_445_600, 0).UTC(),
		End:         time.Unix(1_772_445_615, 0).UTC(),
		Connections: 4,
	}
	if got := FromProto(p); !reflect.DeepEqual(got, want) {
		t.Errorf("FromProto =\n%+v\nwant\n%+v", got, want)
	}
}

// Names lose the prefixes of Felix's internal names, but a Kubernetes
// name keeps its dots.
func TestPolicyNames(t *testing.T) {
	tests := []struct{ kind, tier, name, want string }{
		{"GlobalNetworkPolicy", "calico-pni", "calico-pni.pni-tier-allow-dns", "pni-tier-allow-dns"},
		{"GlobalNetworkPolicy", "calico-pni", "pni-tier-allow-dns", "pni-tier-allow-dns"},
		{"StagedGlobalNetworkPolicy", "default", "staged:default.pni-staged-deny-ingress", "pni-staged-deny-ingress"},
		{"CalicoNetworkPolicy", "security", "security.lockdown", "lockdown"},
		{"NetworkPolicy", "default", "default.allow.web", "default.allow.web"},
		{"StagedKubernetesNetworkPolicy", "default", "staged:allow-web", "allow-web"},
	}
	for _, tt := range tests {
		if got := policyName(tt.kind, tt.tier, tt.name); got != tt.want {
			t.Errorf("policyName(%s, %s, %s) = %q, want %q", tt.kind, tt.tier, tt.name, got, tt.want)
		}
	}
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		hit  Hit
		want string
	}{
		{Hit{Kind: "GlobalNetworkPolicy", Name: "pni-tier-allow-dns", Tier: "calico-pni"}, "GlobalNetworkPolicy pni-tier-allow-dns (tier calico-pni)"},
		{Hit{Kind: "GlobalNetworkPolicy", Name: "calico-pni.pni-tier-allow-dns", Tier: "calico-pni"}, "GlobalNetworkPolicy pni-tier-allow-dns (tier calico-pni)"},
		{Hit{Kind: "NetworkPolicy", Namespace: "shop", Name: "allow-web"}, "NetworkPolicy shop/allow-web (tier default)"},
		{Hit{Kind: "EndOfTier", Tier: "calico-pni", Trigger: &Hit{Name: "x"}}, "end of tier calico-pni"},
		{Hit{Kind: "Profile", Name: "kns.shop"}, "profile kns.shop"},
	}
	for _, tt := range tests {
		if got := PolicyString(tt.hit); got != tt.want {
			t.Errorf("PolicyString(%+v) = %q, want %q", tt.hit, got, tt.want)
		}
	}
}

// The same entry has the same identity; any field of Goldmane's flow key
// or the interval makes another.
func TestFlowIdentity(t *testing.T) {
	base := pendingDeny("data", "shop", 5432, t0)
	same := pendingDeny("data", "shop", 5432, t0)
	same.Connections = 9 // counts are not part of the key
	same.Src.Labels = map[string]string{"a": "b"}
	if flowKey(base) != flowKey(same) {
		t.Error("the same flow key hashes differently")
	}
	changes := map[string]func(*Flow){
		"port":     func(f *Flow) { f.Port = 5433 },
		"reporter": func(f *Flow) { f.Reporter = ReporterSrc },
		"action":   func(f *Flow) { f.Action = "deny" },
		"source":   func(f *Flow) { f.Src.Name = "other-" },
		"trace":    func(f *Flow) { f.Pending = tenantDeny("shop") },
		"trigger":  func(f *Flow) { f.Pending = defaultTierWallDeny },
	}
	for what, change := range changes {
		f := pendingDeny("data", "shop", 5432, t0)
		f.Pending = append([]Hit(nil), f.Pending...)
		change(&f)
		if flowKey(f) == flowKey(base) {
			t.Errorf("a different %s hashes the same", what)
		}
	}
}
