package main

import (
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/policies"
)

// TestStatusTableNamesRancherAndMoves: the status table says where
// Rancher's own isolation also applies and which namespaces are moving,
// in both widths; a namespace with neither says nothing of them.
func TestStatusTableNamesRancherAndMoves(t *testing.T) {
	rows := []statusRow{
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
		if err := writeStatusTable(&b, rows, tt.wide); err != nil {
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
