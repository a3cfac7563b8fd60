package main

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// A short, seeded soak on Calico 3.30 (calico-pni's own tier, staged
// policies, enforcement switches): every operation converges to what
// render computes, no write of a replica breaks the invariant, the
// replicas never write at once. The long run and its figures are in
// docs/benchmarks.md.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	rep, err := run(options{Seed: 20261128, Ops: 30, Namespaces: 20, Projects: 5, Nodes: 3, CalicoVersion: "v3.30.1"},
		func(format string, args ...any) { t.Logf(format, args...) })
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.failed() {
		t.Fatal("the soak failed; replay it with the seed above")
	}
	if rep.Checked == 0 || rep.Writes == 0 || len(rep.Converge) != 30 {
		t.Fatalf("the soak checked nothing: %d writes, %d verdicts, %d operations", rep.Writes, rep.Checked, len(rep.Converge))
	}
}

// The invariant check finds a gap: a replica that deletes a project's
// allow policy and writes it again denies, in between, traffic inside the
// project that both ends allow.
func TestInvariantCheckFindsAGap(t *testing.T) {
	api := calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}
	order := 2000.0
	project := calico.Policy{Name: "pni-project-p-a", Class: calico.ClassAllow, Spec: calico.GlobalNetworkPolicySpec{
		Order: &order, NamespaceSelector: "calico-pni.io/isolated == 'true' && calico-pni.io/project == 'p-a'",
		Types:   []calico.PolicyType{calico.Ingress},
		Ingress: []calico.Rule{{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: "calico-pni.io/project == 'p-a'"}}},
	}}
	baseOrder := 10000.0
	baseline := calico.Policy{Name: "pni-deny-ingress", Class: calico.ClassBaseline, Spec: calico.GlobalNetworkPolicySpec{
		Order: &baseOrder, NamespaceSelector: "calico-pni.io/isolated == 'true'", Types: []calico.PolicyType{calico.Ingress},
	}}
	labels := map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a"}
	st := &state{
		namespaces: map[string]map[string]string{"a": labels, "b": labels, "other": {}},
		calico: map[string]*unstructured.Unstructured{
			"GlobalNetworkPolicy/default.pni-project-p-a":  api.Object(project),
			"GlobalNetworkPolicy/default.pni-deny-ingress": api.Object(baseline),
		},
	}
	now := time.Now()
	writes := []testbed.Write{
		{Writer: "soak-a", Verb: "delete", Resource: "globalnetworkpolicies", Name: "default.pni-project-p-a", Received: now, Done: now},
		{Writer: "soak-a", Verb: "create", Resource: "globalnetworkpolicies", Name: "default.pni-project-p-a", Object: api.Object(project), Received: now, Done: now},
	}
	s := &soak{o: options{Seed: 7}, before: st, wire: &wireCheck{lastDone: map[string]time.Time{}}, rep: newReport(7)}
	s.checkWrites(1, "test", writes, st.clone())
	if len(s.rep.Failures) > 0 {
		t.Fatal(s.rep.Failures)
	}
	found := false
	for _, v := range s.rep.Violations {
		found = found || (strings.Contains(v, "a/probe -> b/probe TCP/80 is deny") && strings.Contains(v, "after write 1 of 2"))
	}
	if !found {
		t.Errorf("the gap between the delete and the create was not found; violations: %v", s.rep.Violations)
	}

	// Two replicas whose writes overlap are reported.
	c := &wireCheck{lastDone: map[string]time.Time{}}
	rep := newReport(7)
	c.check([]testbed.Write{
		{Writer: "soak-a", Verb: "patch", Resource: "namespaces", Received: now, Done: now.Add(time.Second)},
		{Writer: "soak-b", Verb: "patch", Resource: "namespaces", Received: now.Add(500 * time.Millisecond), Done: now.Add(2 * time.Second)},
	}, rep)
	if len(rep.Overlaps) != 1 {
		t.Errorf("overlapping writers: %v", rep.Overlaps)
	}
}
