package evaluator

import (
	"reflect"
	"testing"
)

// TestAllPorts: without a port, every segment of ports the rules treat
// alike is evaluated once, and the summary lists the allowed ports.
func TestAllPorts(t *testing.T) {
	c := world(
		gnp(t, "in", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow, protocol: TCP, destination: {ports: [5432, '8000:8080', metrics]}}, {action: Deny, protocol: TCP, destination: {ports: [8080]}}]}"),
	)
	c.Pods[1].Ports = []NamedPort{{Name: "metrics", Protocol: "TCP", Port: 9187}}
	ix := NewIndex(c)
	s := ix.EvaluateAllPorts(endpoint(t, ix, "shop/web"), endpoint(t, ix, "db/pg"), "tcp")
	want := []PortRange{{5432, 5432}, {8000, 8080}, {9187, 9187}}
	if s.Verdict != Partial || !reflect.DeepEqual(s.Allowed, want) || s.AllowedText() != "TCP 5432, 8000-8080, 9187" {
		t.Errorf("summary %s %v %q", s.Verdict, s.Allowed, s.AllowedText())
	}
	if len(s.Segments) != 8 {
		t.Errorf("%d segments, want 8 (cut at 5432, 8000-8080, 8080, 9187)", len(s.Segments))
	}
	open := NewIndex(world())
	if s := open.EvaluateAllPorts(endpoint(t, open, "shop/web"), endpoint(t, open, "db/pg"), "UDP"); s.Verdict != Allow || len(s.Segments) != 1 {
		t.Errorf("no policies: %s, %d segments", s.Verdict, len(s.Segments))
	}
}
