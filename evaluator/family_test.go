package evaluator

import "testing"

// A pod whose address is not known but whose IP family is (a pod a flow
// log names) is decided by a rule on the nodes' addresses, which it is
// none of; with the family unknown too, the rule cannot be decided. A rule
// on a wider range still cannot be decided: the pod may be in it.
func TestFamilyOfAnUnknownAddress(t *testing.T) {
	baseline := gnp(t, "deny-in", "{order: 10, selector: all(), types: [Ingress]}")
	fromNodes := gnp(t, "from-nodes", "{order: 1, selector: all(), types: [Ingress], ingress: [{action: Allow, source: {nets: [10.0.0.2/32, 10.42.9.1/32]}}]}")
	fromPods := gnp(t, "from-pods", "{order: 1, selector: all(), types: [Ingress], ingress: [{action: Allow, source: {nets: [10.42.0.0/16]}}]}")
	sameProject := gnp(t, "same-project", "{order: 5, selector: all(), types: [Ingress], ingress: [{action: Allow, source: {namespaceSelector: project == 'b'}}]}")
	tests := []struct {
		name     string
		policies []Policy
		family   int
		want     Verdict
	}{
		{"nodes' addresses, family known: not the pod, the baseline denies", []Policy{baseline, fromNodes}, 4, Deny},
		{"nodes' addresses, family unknown: cannot be decided", []Policy{baseline, fromNodes}, 0, Indeterminate},
		{"the pod range, family known: the pod may be in it", []Policy{baseline, fromPods}, 4, Indeterminate},
		{"a selector after the nodes' rule: decided by the selector", []Policy{baseline, fromNodes, sameProject}, 4, Allow},
		{"an IPv6 pod against IPv4 nodes' addresses: no match", []Policy{baseline, fromNodes}, 6, Deny},
	}
	for _, tt := range tests {
		ix := NewIndex(world(tt.policies...))
		src := ix.Placeholder("db")
		src.Family = tt.family
		dst := ix.Placeholder("db")
		dst.Family = tt.family
		if r := ix.Evaluate(src, dst, "TCP", 5432); r.Verdict != tt.want {
			t.Errorf("%s: %s (%s), want %s", tt.name, r.Verdict, r.Reason, tt.want)
		}
	}
}
