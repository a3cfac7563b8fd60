package flows

import (
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now})
	add := func(f Flow, times int) {
		for i := range times {
			f.Start = t0.Add(time.Duration(i) * Interval)
			f.End = f.Start.Add(Interval)
			s.Add(f)
		}
	}
	add(pendingDeny("report", "shop", 5432, t0), 3) // report is in another project
	add(pendingDeny("cart", "shop", 80, t0), 1)     // cart is in shop's project
	add(pendingDeny("report", "billing", 443, t0), 2)
	add(flowAt("report", "shop", 8080, "allow", profileAllow("shop"), tenantDeny("shop"), t0), 1)
	add(allowed("report", "shop", 9000, t0), 5) // not a pending deny
	clock.Add(time.Hour)

	of := projects(map[string]string{"shop": "p-shop", "cart": "p-shop", "billing": "p-shop", "report": "p-data"})
	sum := Summarize(s.Pending(), of, 1)

	wantProjects := []ProjectSummary{{
		Project: "p-shop", Namespaces: []string{"billing", "shop"},
		Flows: 6, Connections: 12, TenantFlows: 1, TenantConnections: 2, Last: t0.Add(3 * Interval),
	}}
	if !reflect.DeepEqual(sum.Projects, wantProjects) {
		t.Errorf("projects\n%+v\nwant\n%+v", sum.Projects, wantProjects)
	}
	wantNamespaces := []NamespaceSummary{
		{Namespace: "billing", Project: "p-shop", Flows: 2, Connections: 4, Last: t0.Add(2 * Interval),
			TopPeers: []Peer{{Project: "p-data", Namespace: "report", Type: WorkloadEndpoint, Flows: 2, Connections: 4}}},
		{Namespace: "shop", Project: "p-shop", Flows: 4, Connections: 8, TenantFlows: 1, TenantConnections: 2, Last: t0.Add(3 * Interval),
			TopPeers: []Peer{{Project: "p-data", Namespace: "report", Type: WorkloadEndpoint, Flows: 3, Connections: 6}}},
	}
	if !reflect.DeepEqual(sum.Namespaces, wantNamespaces) {
		t.Errorf("namespaces\n%+v\nwant\n%+v", sum.Namespaces, wantNamespaces)
	}
	type line struct {
		ns, peer, peerProject string
		port                  int
		cause                 Cause
		flows                 int64
	}
	var got []line
	for _, r := range sum.Rows {
		got = append(got, line{r.Namespace, r.PeerNamespace, r.PeerProject, r.Port, r.Cause, r.Flows})
	}
	want := []line{
		{"billing", "report", "p-data", 443, CauseWall, 2},
		{"shop", "cart", "p-shop", 80, CauseWall, 1},
		{"shop", "report", "p-data", 5432, CauseWall, 3},
		{"shop", "report", "p-data", 8080, CauseTenant, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%+v\nwant\n%+v", got, want)
	}
}

// A namespace counts in the project it is in when the summary is made.
func TestSummarizeAsksForProjectsWhenItRuns(t *testing.T) {
	s := NewStore(StoreOptions{Clock: newClock().Now})
	s.Add(pendingDeny("report", "shop", 5432, t0))
	before := Summarize(s.Pending(), projects(map[string]string{"shop": "p-old"}), 0)
	after := Summarize(s.Pending(), projects(map[string]string{"shop": "p-new"}), 0)
	if before.Projects[0].Project != "p-old" || after.Projects[0].Project != "p-new" {
		t.Errorf("projects %v then %v", before.Projects, after.Projects)
	}
}
