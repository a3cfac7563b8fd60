package flows

import (
	"strings"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/config"
)

func week() config.Promote {
	return config.Promote{QuietFor: config.Duration{Duration: 168 * time.Hour}}
}

func TestGate(t *testing.T) {
	of := projects(map[string]string{"shop": "p-shop", "cart": "p-shop", "billing": "p-billing", "report": "p-data", "old-mon": "p-mon"})
	deny := func(src, dst string, port int, at time.Time) Seen {
		k, _ := Classify(pendingDeny(src, dst, port, at))
		return Seen{Key: k, First: at, Last: at, Flows: 1}
	}
	tenant := func(at time.Time) Seen {
		k, _ := Classify(flowAt("report", "shop", 8080, "allow", nil, tenantDeny("shop"), at))
		return Seen{Key: k, First: at, Last: at, Flows: 1}
	}
	accept := week()
	accept.Accept = []config.AcceptedDeny{{PeerNamespace: "old-*", Ports: []int{9100}, Reason: "the old exporter is going away"}}

	tests := []struct {
		name       string
		promote    config.Promote
		staged     StagedProject
		evidence   Evidence
		now        time.Time
		ready      bool
		quietSince time.Time
		accepted   int
		reason     string
	}{
		{
			name: "no evidence: not quiet", promote: week(), staged: StagedProject{Project: "p-shop"},
			now: t0.Add(1000 * time.Hour), reason: "no flow evidence now",
		},
		{
			name: "quiet since the evidence began, not long enough", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0}, now: t0.Add(100 * time.Hour), quietSince: t0,
			reason: "quiet for 100h0m0s of 168h0m0s (no unexpected pending deny); passes at 2026-03-09T10:00:00Z",
		},
		{
			name: "quiet for a week", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0}, now: t0.Add(168 * time.Hour), ready: true, quietSince: t0,
		},
		{
			name: "a pending deny restarts the quiet time", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0, Denies: []Seen{deny("report", "shop", 5432, t0.Add(10*time.Hour)), deny("report", "shop", 80, t0.Add(2*time.Hour))}},
			now:      t0.Add(170 * time.Hour), quietSince: t0.Add(10 * time.Hour),
			reason: "last unexpected pending deny ingress of shop from report on TCP 5432 at 2026-03-02T20:00:00Z",
		},
		{
			name: "a deny of another project does not count", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0, Denies: []Seen{deny("report", "billing", 5432, t0.Add(10*time.Hour))}},
			now:      t0.Add(168 * time.Hour), ready: true, quietSince: t0,
		},
		{
			name: "an accepted deny does not count", promote: accept, staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0, Denies: []Seen{deny("old-mon", "cart", 9100, t0.Add(10*time.Hour))}},
			now:      t0.Add(168 * time.Hour), ready: true, quietSince: t0, accepted: 1,
		},
		{
			name: "an accepted peer on another port counts", promote: accept, staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0, Denies: []Seen{deny("old-mon", "cart", 9101, t0.Add(10*time.Hour))}},
			now:      t0.Add(168 * time.Hour), quietSince: t0.Add(10 * time.Hour),
		},
		{
			name: "staged after the evidence began: counted from the staging", promote: week(),
			staged:   StagedProject{Project: "p-shop", Since: t0.Add(24 * time.Hour)},
			evidence: Evidence{Since: t0}, now: t0.Add(170 * time.Hour), quietSince: t0.Add(24 * time.Hour),
		},
		{
			name: "a deny before the evidence began does not count", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0.Add(time.Hour), Denies: []Seen{deny("report", "shop", 5432, t0)}},
			now:      t0.Add(169 * time.Hour), ready: true, quietSince: t0.Add(time.Hour),
		},
		{
			name: "a tenant's deny behind the walls does not count", promote: week(), staged: StagedProject{Project: "p-shop"},
			evidence: Evidence{Since: t0, Denies: []Seen{tenant(t0.Add(10 * time.Hour))}},
			now:      t0.Add(168 * time.Hour), ready: true, quietSince: t0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Gate(tt.now, tt.promote, []StagedProject{tt.staged}, tt.evidence, of)
			if len(got) != 1 {
				t.Fatalf("%d answers", len(got))
			}
			r := got[0]
			if r.Project != tt.staged.Project || r.Ready != tt.ready || !r.QuietSince.Equal(tt.quietSince) || r.Accepted != tt.accepted {
				t.Errorf("%+v\nwant ready %v, quiet since %v, %d accepted", r, tt.ready, tt.quietSince, tt.accepted)
			}
			if !tt.quietSince.IsZero() && (r.Quiet != tt.now.Sub(tt.quietSince) || !r.ReadyAt.Equal(tt.quietSince.Add(168*time.Hour))) {
				t.Errorf("quiet %v, ready at %v", r.Quiet, r.ReadyAt)
			}
			if !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason, tt.reason)
			}
		})
	}
}

// Projects are answered in order, each on its own evidence.
func TestGateAnswersEveryStagedProject(t *testing.T) {
	k, _ := Classify(pendingDeny("report", "shop", 5432, t0))
	ev := Evidence{Since: t0, Denies: []Seen{{Key: k, Last: t0.Add(time.Hour)}}}
	got := Gate(t0.Add(168*time.Hour), week(), []StagedProject{{Project: "p-shop"}, {Project: "p-billing"}}, ev,
		projects(map[string]string{"shop": "p-shop"}))
	if len(got) != 2 || got[0].Project != "p-billing" || !got[0].Ready || got[1].Project != "p-shop" || got[1].Ready {
		t.Errorf("%+v", got)
	}
	if got[1].Unexpected != 1 || got[1].LastDeny == nil || got[1].LastDeny.Key != k {
		t.Errorf("p-shop: %+v", got[1])
	}
}

func TestAccepted(t *testing.T) {
	of := projects(map[string]string{"shop": "p-shop", "report": "p-data", "old-mon": "p-mon"})
	fromReport, _ := Classify(pendingDeny("report", "shop", 5432, t0))
	internet := flowAt("shop", "", 443, "allow", nil, []Hit{{Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1}}, t0)
	internet.Reporter, internet.Dst = ReporterSrc, Endpoint{Type: Network, Name: "pub"}
	toInternet, _ := Classify(internet)
	folded := fromReport.fold()

	tests := []struct {
		name   string
		accept config.AcceptedDeny
		key    Key
		want   bool
	}{
		{"peer namespace", config.AcceptedDeny{PeerNamespace: "report"}, fromReport, true},
		{"peer namespace pattern", config.AcceptedDeny{PeerNamespace: "rep*"}, fromReport, true},
		{"another peer namespace", config.AcceptedDeny{PeerNamespace: "old-*"}, fromReport, false},
		{"peer project", config.AcceptedDeny{PeerProject: "p-data"}, fromReport, true},
		{"another peer project", config.AcceptedDeny{PeerProject: "p-mon"}, fromReport, false},
		{"port and protocol", config.AcceptedDeny{Ports: []int{5432}, Protocol: "tcp"}, fromReport, true},
		{"another protocol", config.AcceptedDeny{Ports: []int{5432}, Protocol: "UDP"}, fromReport, false},
		{"direction", config.AcceptedDeny{PeerNamespace: "report", Direction: "egress"}, fromReport, false},
		{"project", config.AcceptedDeny{Project: "p-shop", PeerNamespace: "report"}, fromReport, true},
		{"another project", config.AcceptedDeny{Project: "p-other", PeerNamespace: "report"}, fromReport, false},
		{"namespace", config.AcceptedDeny{Namespace: "sh*", PeerNamespace: "report"}, fromReport, true},
		{"the internet", config.AcceptedDeny{PeerNetwork: "pub"}, toInternet, true},
		{"private networks only", config.AcceptedDeny{PeerNetwork: "pvt"}, toInternet, false},
		{"a namespace pattern never matches an address outside", config.AcceptedDeny{PeerNamespace: "*"}, toInternet, false},
		{"a folded key is never accepted", config.AcceptedDeny{PeerNamespace: "*"}, folded, false},
	}
	for _, tt := range tests {
		tt.accept.Reason = "test"
		got := AcceptedBy([]config.AcceptedDeny{tt.accept}, tt.key, "p-shop", of) == 0
		if got != tt.want {
			t.Errorf("%s: accepted %v, want %v", tt.name, got, tt.want)
		}
	}
}
