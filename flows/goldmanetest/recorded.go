package goldmanetest

import (
	"time"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// The flows of a small cluster in tier mode, written in the shapes real
// Felix 3.30+ and Goldmane report (calico.md, "Flow logs: Goldmane";
// docs/rollout.md): project p-shop (namespaces shop and cart) is staged,
// project p-data (report) is enforced, namespace gone is not known to
// calico-pni (its pods are gone or it was never in a project).
//
// Each is one flow log entry of the 15-second interval that starts at
// start: call them for several intervals to make a history.

// StagedDeny: report → shop:5432, seen at shop. Felix allowed it (shop's
// profile); with the staged walls in place, calico-pni's tier would end in
// Deny, charged to the staged ingress wall.
func StagedDeny(start time.Time) *pb.Flow {
	return flow(start, "report", "report-job-", "shop", "db-", 5432, pb.Reporter_Dst, pb.Action_Allow,
		[]*pb.PolicyHit{profile("shop")},
		[]*pb.PolicyHit{wallEnd("pni-tier-staged-deny-ingress")})
}

// EnforcedAllow: cart → report:8080, seen at report (enforced): the
// enforced walls passed it to the default tier, where report's
// NetworkPolicy allows it; nothing is staged for report.
func EnforcedAllow(start time.Time) *pb.Flow {
	return flow(start, "cart", "cart-web-", "report", "report-api-", 8080, pb.Reporter_Dst, pb.Action_Allow,
		[]*pb.PolicyHit{
			{Kind: pb.PolicyKind_GlobalNetworkPolicy, Name: "pni-tier-allow-from-p-shop", Tier: "calico-pni", Action: pb.Action_Pass},
			{Kind: pb.PolicyKind_NetworkPolicy, Namespace: "report", Name: "allow-api", Tier: "default", Action: pb.Action_Allow, PolicyIndex: 1},
		},
		[]*pb.PolicyHit{
			{Kind: pb.PolicyKind_GlobalNetworkPolicy, Name: "pni-tier-allow-from-p-shop", Tier: "calico-pni", Action: pb.Action_Pass},
			{Kind: pb.PolicyKind_NetworkPolicy, Namespace: "report", Name: "allow-api", Tier: "default", Action: pb.Action_Allow, PolicyIndex: 1},
		})
}

// UnknownPods: gone → cart:80, seen at cart: the source namespace is one
// calico-pni does not know. The staged walls would deny it.
func UnknownPods(start time.Time) *pb.Flow {
	return flow(start, "gone", "batch-", "cart", "cart-web-", 80, pb.Reporter_Dst, pb.Action_Allow,
		[]*pb.PolicyHit{profile("cart")},
		[]*pb.PolicyHit{wallEnd("pni-tier-staged-deny-ingress")})
}

// StagedAllow: cart → shop:5432, seen at shop: the project's staged allow
// lets it through.
func StagedAllow(start time.Time) *pb.Flow {
	return flow(start, "cart", "cart-web-", "shop", "db-", 5432, pb.Reporter_Dst, pb.Action_Allow,
		[]*pb.PolicyHit{profile("shop")},
		[]*pb.PolicyHit{{Kind: pb.PolicyKind_StagedGlobalNetworkPolicy, Name: "pni-tier-staged-project-p-shop", Tier: "calico-pni", Action: pb.Action_Allow}})
}

// Sample returns one interval of every flow above.
func Sample(start time.Time) []*pb.Flow {
	return []*pb.Flow{StagedDeny(start), EnforcedAllow(start), UnknownPods(start), StagedAllow(start)}
}

func flow(start time.Time, srcNS, src, dstNS, dst string, port int64, reporter pb.Reporter, action pb.Action, enforced, pending []*pb.PolicyHit) *pb.Flow {
	return &pb.Flow{
		Key: &pb.FlowKey{
			SourceName: src, SourceNamespace: srcNS, SourceType: pb.EndpointType_WorkloadEndpoint,
			DestName: dst, DestNamespace: dstNS, DestType: pb.EndpointType_WorkloadEndpoint,
			DestPort: port, Proto: "TCP", Reporter: reporter, Action: action,
			Policies: &pb.PolicyTrace{EnforcedPolicies: enforced, PendingPolicies: pending},
		},
		StartTime:             start.Unix(),
		EndTime:               start.Add(15 * time.Second).Unix(),
		SourceLabels:          []string{"app=" + src[:len(src)-1]},
		DestLabels:            []string{"app=" + dst[:len(dst)-1]},
		PacketsIn:             10,
		PacketsOut:            12,
		BytesIn:               1200,
		BytesOut:              3400,
		NumConnectionsStarted: 2,
	}
}

func profile(ns string) *pb.PolicyHit {
	return &pb.PolicyHit{Kind: pb.PolicyKind_Profile, Name: "kns." + ns, Action: pb.Action_Allow}
}

func wallEnd(trigger string) *pb.PolicyHit {
	return &pb.PolicyHit{
		Kind: pb.PolicyKind_EndOfTier, Tier: "calico-pni", Action: pb.Action_Deny, RuleIndex: -1,
		Trigger: &pb.PolicyHit{Kind: pb.PolicyKind_StagedGlobalNetworkPolicy, Name: trigger, Tier: "calico-pni"},
	}
}
