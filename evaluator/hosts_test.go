package evaluator

import (
	"strings"
	"testing"
)

// TestHosts: nodes, host-network pods and outside addresses are no
// workload endpoints and have no side of their own. Felix never polices a
// host's traffic to the pods on that host (felix/rules/static.go,
// filterOutputChain); traffic from a host to a pod on another node may
// come from any of the node's host addresses (tunnel or node IP).
func TestHosts(t *testing.T) {
	baseline := gnp(t, "deny-in", "{order: 10, selector: all(), types: [Ingress]}")
	fromNodes := gnp(t, "from-nodes", "{order: 1, selector: all(), types: [Ingress], ingress: [{action: Allow, source: {nets: [10.0.0.2/32, 10.42.9.1/32]}}]}")
	fromNodeIPOnly := gnp(t, "from-node-ip", "{order: 1, selector: all(), types: [Ingress], ingress: [{action: Allow, source: {nets: [10.0.0.2/32]}}]}")
	c := world(baseline)
	c.Pods = append(c.Pods,
		Pod{Namespace: "db", Name: "agent-n1", Node: "n1", HostNetwork: true, IPs: addrs("10.0.0.1")},
		Pod{Namespace: "db", Name: "agent-n2", Node: "n2", HostNetwork: true, IPs: addrs("10.0.0.2")},
	)
	ix := NewIndex(c)
	r := check(t, ix, "db/agent-n1", "db/pg", 5432, Allow) // same node
	if r.Egress.Policed || !strings.Contains(r.Ingress.Reason, "same") && !strings.Contains(r.Ingress.Reason, "pods on that host") {
		t.Errorf("same node: %+v / %s", r.Egress, r.Ingress.Reason)
	}
	check(t, ix, "db/agent-n2", "db/pg", 5432, Deny)

	c.Policies = []Policy{baseline, fromNodes}
	check(t, NewIndex(c), "db/agent-n2", "db/pg", 5432, Allow)
	c.Policies = []Policy{baseline, fromNodeIPOnly}
	check(t, NewIndex(c), "db/agent-n2", "db/pg", 5432, Indeterminate)

	// An outside destination has no ingress side.
	r = check(t, NewIndex(world()), "shop/web", "93.184.216.34", 443, Allow)
	if r.Ingress.Policed || !strings.Contains(r.Ingress.Reason, "outside") {
		t.Errorf("outside: %+v", r.Ingress)
	}
}
