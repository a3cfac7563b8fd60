package controller

import (
	"reflect"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/policies"
)

// The summary a staged namespace's status shows: wall denies rounded
// down to a power of ten, the three peers with most of them (compared by
// order of magnitude, then by name), the count of the others, and tenant
// denies apart.
func TestSummarizePending(t *testing.T) {
	row := func(ns string, dir flows.Direction, peerNS, peerProject string, port int, n int64) flows.Row {
		return flows.Row{Namespace: ns, Direction: dir, Cause: flows.CauseWall, PeerNamespace: peerNS, PeerProject: peerProject,
			PeerType: flows.WorkloadEndpoint, Protocol: "TCP", Port: port, Flows: n}
	}
	sum := flows.Summary{
		Rows: []flows.Row{
			row("shop", flows.Ingress, "report", "p-data", 5432, 120),
			row("shop", flows.Ingress, "report", "p-data", 5433, 5),
			row("shop", flows.Ingress, "billing", "p-bill", 80, 150),
			row("shop", flows.Egress, "", "", 443, 30),
			row("shop", flows.Ingress, "audit", "p-audit", 80, 9),
			{Namespace: "shop", Direction: flows.Egress, Cause: flows.CauseWall, PeerType: flows.Network, PeerName: "pub", Protocol: "UDP", Port: 53, Flows: 2},
			// A tenant deny and a folded key are not peers of the walls.
			{Namespace: "shop", Direction: flows.Ingress, Cause: flows.CauseTenant, PeerNamespace: "x", Protocol: "TCP", Port: 1, Flows: 1000},
			{Namespace: "shop", Direction: flows.Ingress, Cause: flows.CauseWall, Folded: true, Flows: 1000},
		},
		Namespaces: []flows.NamespaceSummary{
			{Namespace: "shop", Flows: 1316, TenantFlows: 1000},
			{Namespace: "quiet"},
		},
	}
	// Peers by magnitude: billing 150 and report 125 (100+), then the
	// unknown endpoint 30 (10+); audit 9 and pub 2 (1+) are the others.
	want := &policies.Pending{Flows: "1000+", TenantFlows: "1000+", Window: "24h", MorePeers: 2, Peers: []policies.PendingPeer{
		{Direction: "egress", Peer: "an unknown endpoint", Ports: []string{"TCP 443"}},
		{Direction: "ingress", Peer: "billing (p-bill)", Ports: []string{"TCP 80"}},
		{Direction: "ingress", Peer: "report (p-data)", Ports: []string{"TCP 5432", "TCP 5433"}},
	}}
	v := summarize(sum, 24*time.Hour)
	if got := v.of("shop", "p-shop"); !reflect.DeepEqual(got, want) {
		t.Errorf("shop:\n got %+v\nwant %+v", got, want)
	}
	if got := v.of("quiet", "p-shop"); !reflect.DeepEqual(got, &policies.Pending{Flows: "0", Window: "24h"}) {
		t.Errorf("a namespace without pending denies: %+v", got)
	}
	for n, want := range map[int64]string{0: "0", 1: "1+", 9: "1+", 10: "10+", 99: "10+", 100: "100+", 12345: "10000+"} {
		if got := magnitude(n); got != want {
			t.Errorf("magnitude(%d) = %q, want %q", n, got, want)
		}
	}
}

// The gate's answer in the statuses: when the project passes, rounded up
// to the hour (an exact hour stays), and its last unexpected deny; a
// project's answer is added to every one of its namespaces.
func TestGateView(t *testing.T) {
	at := time.Date(2026, 3, 9, 10, 20, 0, 0, time.UTC)
	deny := flows.Seen{Key: flows.Key{Cause: flows.CauseWall, Direction: flows.Ingress, Namespace: "shop", PeerNamespace: "report", Protocol: "TCP", Port: 5432}}
	g := gateView([]flows.Readiness{
		{Project: "p-shop", ReadyAt: at, LastDeny: &deny},
		{Project: "p-exact", ReadyAt: at.Truncate(time.Hour)},
		{Project: "p-none"},
	})
	want := map[string]projectGate{
		"p-shop":  {readyAt: "2026-03-09T11:00:00Z", lastDeny: "ingress of shop from report on TCP 5432"},
		"p-exact": {readyAt: "2026-03-09T10:00:00Z"},
		"p-none":  {},
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("gate view %+v, want %+v", g, want)
	}
	v := &pendingView{zero: &policies.Pending{Flows: "0", Window: "24h"}, gate: g}
	if got := v.of("cart", "p-shop"); got.ReadyAt != "2026-03-09T11:00:00Z" || got.Flows != "0" {
		t.Errorf("cart of p-shop: %+v", got)
	}
	if v.zero.ReadyAt != "" {
		t.Errorf("the shared zero summary was changed: %+v", v.zero)
	}
}

// The metric counts every staged project (zero without denies), staged
// namespaces isolated on their own under "", and no project that is not
// staged (its denies stay in the window after a promotion).
func TestPendingByProject(t *testing.T) {
	nss := namespaceFacts{
		project: map[string]string{"shop": "p-shop", "lab": "", "report": "p-data", "sandbox": ""},
		staged:  map[string]bool{"shop": true, "lab": true},
	}
	staged := []flows.StagedProject{{Project: "p-shop"}, {Project: "p-quiet"}}
	sum := flows.Summary{
		Projects:   []flows.ProjectSummary{{Project: "p-shop", Flows: 7}, {Project: "p-data", Flows: 3}, {Project: "", Flows: 9}},
		Namespaces: []flows.NamespaceSummary{{Namespace: "shop", Flows: 7}, {Namespace: "report", Flows: 3}, {Namespace: "lab", Flows: 4}, {Namespace: "sandbox", Flows: 5}},
	}
	want := map[string]int64{"p-shop": 7, "p-quiet": 0, "": 4}
	if got := pendingByProject(sum, staged, nss); !reflect.DeepEqual(got, want) {
		t.Errorf("pending by project %v, want %v", got, want)
	}
}
