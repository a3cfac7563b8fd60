package plan

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

var api328 = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}

func testPolicy(name string, class calico.Class, selector string) calico.Policy {
	order := 2000.0
	return calico.Policy{Name: name, Class: class, Description: "d " + name, Spec: calico.GlobalNetworkPolicySpec{
		Order: &order, NamespaceSelector: selector, Types: []calico.PolicyType{calico.Ingress},
	}}
}

func TestMatchesComparesWhatCalicoPNIOwns(t *testing.T) {
	p := testPolicy("pni-a", calico.ClassAllow, "a == 'x'")
	base := api328.Object(p)
	tests := []struct {
		name   string
		change func(u *unstructured.Unstructured)
		want   bool
	}{
		{"identical", func(*unstructured.Unstructured) {}, true},
		{"foreign label added", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: "allow", "x": "y"})
		}, true},
		{"tier written by the server", func(u *unstructured.Unstructured) { u.Object["spec"].(map[string]any)["tier"] = "default" }, true},
		{"class label changed", func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: "baseline"})
		}, false},
		{"description changed", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{calico.DescriptionAnnotation: "edited"})
		}, false},
		{"order changed", func(u *unstructured.Unstructured) { u.Object["spec"].(map[string]any)["order"] = int64(1) }, false},
		{"rule added", func(u *unstructured.Unstructured) {
			u.Object["spec"].(map[string]any)["ingress"] = []any{map[string]any{"action": "Allow"}}
		}, false},
		{"spec unreadable", func(u *unstructured.Unstructured) { u.Object["spec"].(map[string]any)["types"] = "Ingress" }, false},
	}
	for _, tt := range tests {
		cur := base.DeepCopy()
		tt.change(cur)
		if got := Matches(cur, p, CanonicalOf); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func nsState(name string, isolated bool, project string, requires ...string) policies.NamespaceState {
	st := policies.NamespaceState{Name: name, Labels: map[string]string{}, Requires: requires}
	st.Status = policies.Status{State: policies.Open}
	if project != "" {
		st.Labels[policies.ProjectLabel] = project
		st.Status.Project = project
	}
	if isolated {
		st.Labels[policies.IsolatedLabel] = "true"
		st.Status.State, st.Status.Isolated = policies.Isolated, true
		st.Status.Policies = requires
	}
	return st
}

// writesOf flattens a namespace plan into "phase name" lines and the
// writes by namespace.
func writesOf(s namespaceSteps) (map[string][]NamespaceWrite, map[string][]string) {
	byName := map[string][]NamespaceWrite{}
	phasesOf := map[string][]string{}
	for phase, ws := range s.writes {
		for _, w := range ws {
			byName[w.Name] = append(byName[w.Name], w)
			phasesOf[w.Name] = append(phasesOf[w.Name], phaseNames[phase])
		}
	}
	return byName, phasesOf
}

func TestPlanNamespaces(t *testing.T) {
	inPlace := func(name string) (bool, string) {
		if name == "pni-broken" {
			return false, "creating it failed"
		}
		return true, ""
	}
	isolatedA := nsState("a", true, "p-a", "pni-project-p-a")
	live := map[string]Namespace{
		// New in isolation: the switch and the status.
		"new": {Labels: map[string]string{"team": "x", policies.ProjectLabel: "p-a"}},
		// Up to date: nothing to write.
		"same": {Labels: map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a"}, Annotations: map[string]string{policies.StatusAnnotation: isolatedA.Status.Encode()}},
		// Needs a policy that failed, not yet isolated: held open.
		"held": {Labels: map[string]string{}},
		// Leaving isolation: the label goes, always.
		"leaving": {Labels: map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a", "calico-pni.io/stray": "x"}},
		// Being deleted: left alone.
		"deleting": {Labels: map[string]string{}, Deleting: true},
	}
	same := isolatedA
	same.Name = "same"
	desired := []policies.NamespaceState{
		nsState("new", true, "p-a", "pni-project-p-a"),
		same,
		nsState("held", true, "p-b", "pni-broken", "pni-project-p-b"),
		nsState("leaving", false, "p-a"),
		nsState("deleting", true, "p-a", "pni-project-p-a"),
	}
	steps := planNamespaces(desired, live, inPlace, noHold)
	byName, phasesOf := writesOf(steps)
	if len(byName) != 3 {
		t.Fatalf("writes for %v, want new, held and leaving", keys(byName))
	}
	if got := phasesOf["new"]; !reflect.DeepEqual(got, []string{"isolate"}) {
		t.Errorf("new: phases %v", got)
	}
	if w := byName["new"]; len(w) != 1 || !reflect.DeepEqual(w[0].Set, map[string]string{policies.IsolatedLabel: "true"}) || w[0].Status == "" || !w[0].Last {
		t.Errorf("new: writes %+v", w)
	}
	if w := byName["held"]; len(w) != 1 || len(w[0].Set)+len(w[0].Remove) != 0 {
		t.Errorf("held namespace got a label change: %+v", w)
	}
	held := byName["held"][0].To
	if held.Isolated || held.State != policies.Error || !strings.Contains(strings.Join(held.Problems, ""), "pni-broken (creating it failed)") {
		t.Errorf("held status %+v", held)
	}
	if steps.held["held"] == "" {
		t.Errorf("held not reported: %v", steps.held)
	}
	// leaving: out of isolation, stray calico-pni labels removed with it.
	if got := phasesOf["leaving"]; !reflect.DeepEqual(got, []string{"release"}) {
		t.Errorf("leaving: phases %v", got)
	}
	if w := byName["leaving"]; !reflect.DeepEqual(w[0].Remove, []string{policies.IsolatedLabel, "calico-pni.io/stray"}) || len(w[0].Set) != 0 {
		t.Errorf("leaving: writes %+v", w)
	}
	if steps.transit {
		t.Error("namespaces that change no project went into transit")
	}
	if steps.states[policies.Error] != 1 || steps.states[policies.Isolated] != 3 || steps.states[policies.Open] != 1 {
		t.Errorf("states %v", steps.states)
	}
}

// A namespace leaving isolation and its project keeps its project label
// until it is no longer isolated; one moving alone into isolation gets
// its project label before the switch.
func TestPlanNamespacesOrdersIsolationAndProject(t *testing.T) {
	live := map[string]Namespace{
		"leaving":  {Labels: map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a"}},
		"arriving": {Labels: map[string]string{}},
	}
	all := func(string) (bool, string) { return true, "" }
	for _, tt := range []struct {
		name    string
		desired []policies.NamespaceState
		want    map[string][]string
	}{
		{"alone out", []policies.NamespaceState{nsState("leaving", false, "")}, map[string][]string{"leaving": {"release", "relabel-released"}}},
		{"alone in", []policies.NamespaceState{nsState("arriving", true, "p-a", "pni-project-p-a")}, map[string][]string{"arriving": {"relabel", "isolate"}}},
		// One leaves the project and isolation while another joins both:
		// with the old order, for a moment the newcomer (labelled p-a, not
		// yet isolated) and the leaver (isolated in p-a) could talk,
		// which neither state allows. They move in transit.
		{"crossing", []policies.NamespaceState{nsState("leaving", false, ""), nsState("arriving", true, "p-a", "pni-project-p-a")}, map[string][]string{
			"leaving":  {"transit-1", "transit-2", "transit-3", "release", "transit-4", "transit-5"},
			"arriving": {"transit-1", "transit-2", "transit-3", "isolate", "transit-4", "transit-5"},
		}},
	} {
		steps := planNamespaces(tt.desired, live, all, noHold)
		_, got := writesOf(steps)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: phases %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlanNamespacesReportsRestoredLabels(t *testing.T) {
	d := nsState("a", true, "p-a", "pni-project-p-a")
	live := map[string]Namespace{"a": {
		Labels:      map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-forged"},
		Annotations: map[string]string{policies.StatusAnnotation: d.Status.Encode()},
	}}
	byName, _ := writesOf(planNamespaces([]policies.NamespaceState{d}, live, func(string) (bool, string) { return true, "" }, noHold))
	w := byName["a"]
	if len(w) != 1 || !reflect.DeepEqual(w[0].Restored, []string{policies.ProjectLabel}) || w[0].From == nil {
		t.Errorf("writes %+v", w)
	}
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// The spec memory answers from the cache while the resourceVersion is the
// same, and decodes again when it changes.
func TestSpecsRemembersByResourceVersion(t *testing.T) {
	p := testPolicy("pni-a", calico.ClassAllow, "a == 'x'")
	u := api328.Object(p)
	u.SetResourceVersion("1")
	s := Specs{}
	first := s.Canon(u)
	if string(first) != string(calico.CanonicalSpec(p.Spec)) {
		t.Fatalf("canon %s", first)
	}
	// Same resourceVersion: remembered, even if the object were different.
	u.Object["spec"].(map[string]any)["order"] = int64(1)
	if string(s.Canon(u)) != string(first) {
		t.Error("decoded again although the resourceVersion did not change")
	}
	u.SetResourceVersion("2")
	if string(s.Canon(u)) == string(first) {
		t.Error("a new resourceVersion was answered from memory")
	}
	s.Keep(nil)
	if len(s) != 0 {
		t.Errorf("entries of unmanaged objects kept: %v", s)
	}
}
func noHold(*change) string { return "" }

// Namespaces of one project share the generator's policy list, but only
// some of them hold Rancher's own policies: each status names its own
// (policies.Status.Rancher), whatever the namespace before it held.
func TestPlanNamespacesStatusNamesEachNamespacesRancherPolicies(t *testing.T) {
	inPlace := func(string) (bool, string) { return true, "" }
	withRancher := nsState("with-rancher", true, "p-a", "pni-project-p-a")
	withRancher.Status.Rancher = []string{"hn-nodes", "np-default"}
	without := nsState("without", true, "p-a")
	without.Requires, without.Status.Policies = withRancher.Requires, withRancher.Status.Policies // one shared list, as the generator gives it
	live := map[string]Namespace{"with-rancher": {}, "without": {}}
	for _, desired := range [][]policies.NamespaceState{{withRancher, without}, {without, withRancher}} {
		byName, _ := writesOf(planNamespaces(desired, live, inPlace, noHold))
		for _, d := range desired {
			w := byName[d.Name]
			if len(w) == 0 || w[len(w)-1].Status != d.Status.Encode() {
				t.Errorf("%s (after %s): status written %+v, want %s", d.Name, desired[0].Name, w, d.Status.Encode())
			}
		}
	}
}
