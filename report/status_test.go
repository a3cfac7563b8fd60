package report

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/policies"
)

// TestStatusTableNamesRancherAndMoves: the status table says where
// Rancher's own isolation also applies and which namespaces are moving,
// in both widths; a namespace with neither says nothing of them.
func TestStatusTableNamesRancherAndMoves(t *testing.T) {
	rows := []StatusRow{
		{Namespace: "shop", Status: policies.Status{State: policies.Isolated, Isolated: true, Project: "p-b6jcw", Reason: "in project p-b6jcw",
			Rancher: []string{"np-default", "hn-nodes"}}},
		{Namespace: "payments", Status: policies.Status{State: policies.Isolated, Isolated: true, Project: "p-mcb29", Reason: "in project p-mcb29",
			Transition: "from p-b6jcw to p-mcb29"}},
		{Namespace: "redis", Status: policies.Status{State: policies.Isolated, Isolated: true, Project: "p-mcb29", Reason: "in project p-mcb29"}},
	}
	tests := []struct {
		wide bool
		want map[string][]string
	}{
		{false, map[string][]string{
			"shop":     {"[Rancher's isolation also applies: 2 of its policies]"},
			"payments": {"[moving: from p-b6jcw to p-mcb29]"},
		}},
		{true, map[string][]string{
			"shop":     {"np-default,hn-nodes"},
			"payments": {"from p-b6jcw to p-mcb29"},
		}},
	}
	for _, tt := range tests {
		var b strings.Builder
		if err := StatusTable(&b, rows, tt.wide); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if tt.wide && (!strings.Contains(lines[0], "RANCHER") || !strings.Contains(lines[0], "TRANSITION")) {
			t.Errorf("wide header %q", lines[0])
		}
		for _, line := range lines[1:] {
			ns := strings.Fields(line)[0]
			for _, want := range tt.want[ns] {
				if !strings.Contains(line, want) {
					t.Errorf("wide=%v: %s: %q lacks %q", tt.wide, ns, line, want)
				}
			}
			if ns == "redis" && (strings.Contains(line, "Rancher") || strings.Contains(line, "moving")) {
				t.Errorf("wide=%v: redis says Rancher or moving: %q", tt.wide, line)
			}
		}
	}
}

// TestPendingRows: one row per peer of each staged namespace, one for a
// staged namespace without peers or without evidence (saying why), one
// counting the peers left out; other states are not shown.
func TestPendingRows(t *testing.T) {
	staged := func(ns, project string, p *policies.Pending) StatusRow {
		return StatusRow{Namespace: ns, Status: policies.Status{State: policies.Staged, Project: project, Pending: p}}
	}
	tests := []struct {
		name string
		row  StatusRow
		want []PendingRow
	}{
		{"not staged", StatusRow{Namespace: "shop", Status: policies.Status{State: policies.Isolated, Project: "p-a"}}, nil},
		{"no evidence written", staged("web", "p-a", nil),
			[]PendingRow{{Namespace: "web", Project: "p-a", Unavailable: "the daemon has written no pending denies yet"}}},
		{"evidence unavailable", staged("web", "p-a", &policies.Pending{Unavailable: "Goldmane unreachable"}),
			[]PendingRow{{Namespace: "web", Project: "p-a", Unavailable: "Goldmane unreachable"}}},
		{"quiet", staged("web", "p-a", &policies.Pending{Flows: "0", Window: "24h0m0s"}),
			[]PendingRow{{Namespace: "web", Project: "p-a", Flows: "0", Window: "24h0m0s"}}},
		{"peers and more", staged("web", "p-a", &policies.Pending{Flows: "10+", Window: "1h0m0s", MorePeers: 4, Peers: []policies.PendingPeer{
			{Direction: "ingress", Peer: "report (p-b)", Ports: []string{"TCP 5432", "TCP 6379"}},
			{Direction: "egress", Peer: "outside the cluster (pub)", Ports: []string{"TCP 443"}},
		}}), []PendingRow{
			{Namespace: "web", Project: "p-a", Flows: "10+", Window: "1h0m0s", Direction: "ingress", Peer: "report (p-b)", Ports: "TCP 5432, TCP 6379"},
			{Namespace: "web", Project: "p-a", Flows: "10+", Window: "1h0m0s", Direction: "egress", Peer: "outside the cluster (pub)", Ports: "TCP 443"},
			{Namespace: "web", Project: "p-a", Flows: "10+", Window: "1h0m0s", Peer: "(4 more peers)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PendingRows([]StatusRow{tt.row}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestReadyRows: a staged project is ready when every one of its
// namespaces passes the gate by now, not ready when one passes later,
// and unknown (never ready) while one lacks evidence or an answer.
func TestReadyRows(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	staged := func(ns, project string, p *policies.Pending) StatusRow {
		return StatusRow{Namespace: ns, Status: policies.Status{State: policies.Staged, Project: project, Pending: p}}
	}
	past, future := "2026-12-03T10:00:00Z", "2026-12-03T15:00:00Z"
	rows := []StatusRow{
		staged("a1", "p-a", &policies.Pending{ReadyAt: past}),
		staged("a2", "p-a", &policies.Pending{ReadyAt: past}),
		staged("b1", "p-b", &policies.Pending{ReadyAt: past}),
		staged("b2", "p-b", &policies.Pending{ReadyAt: future, LastDeny: "ingress of b2 from shop on TCP 80"}),
		staged("c1", "p-c", &policies.Pending{Unavailable: "flow logs not read"}),
		staged("d1", "p-d", &policies.Pending{Flows: "0"}),
		staged("e1", "p-e", &policies.Pending{ReadyAt: "soon"}),
		staged("f1", "", &policies.Pending{ReadyAt: past}),
		{Namespace: "g1", Status: policies.Status{State: policies.Isolated, Project: "p-g"}},
	}
	want := []ReadyRow{
		{Project: "p-a", Namespaces: []string{"a1", "a2"}, Ready: true, ReadyAt: past},
		{Project: "p-b", Namespaces: []string{"b1", "b2"}, ReadyAt: future, LastDeny: "ingress of b2 from shop on TCP 80"},
		{Project: "p-c", Namespaces: []string{"c1"}, Unknown: "flow logs not read"},
		{Project: "p-d", Namespaces: []string{"d1"}, Unknown: "namespace d1 has no answer of the promotion gate"},
		{Project: "p-e", Namespaces: []string{"e1"}, Unknown: `namespace e1: readyAt "soon" is no time`},
	}
	if got := ReadyRows(rows, now); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
