package sync

import (
	"encoding/json"
	"reflect"
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
		if got := matches(cur, p, canonicalOf); got != tt.want {
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

func TestPlanNamespaces(t *testing.T) {
	inPlace := func(name string) (bool, string) {
		if name == "pni-broken" {
			return false, "creating it failed"
		}
		return true, ""
	}
	isolatedA := nsState("a", true, "p-a", "pni-project-p-a")
	live := map[string]namespaceView{
		// New: gets labels and status.
		"new": {labels: map[string]string{"team": "x"}},
		// Up to date: nothing to write.
		"same": {labels: map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a"}, annotations: map[string]string{policies.StatusAnnotation: isolatedA.Status.Encode()}},
		// Needs a policy that failed, not yet isolated: held open.
		"held": {labels: map[string]string{}},
		// Leaving isolation: the label goes, always.
		"leaving": {labels: map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-a", "calico-pni.io/stray": "x"}},
		// Being deleted: left alone.
		"deleting": {labels: map[string]string{}, deleting: true},
	}
	same := isolatedA
	same.Name = "same"
	desired := []policies.NamespaceState{
		nsState("new", true, "p-a", "pni-project-p-a"),
		same,
		nsState("held", true, "p-b", "pni-broken", "pni-project-p-b"),
		nsState("leaving", false, ""),
		nsState("deleting", true, "p-a", "pni-project-p-a"),
	}
	changes, final := planNamespaces(desired, live, inPlace)
	byName := map[string]namespaceChange{}
	for _, c := range changes {
		byName[c.name] = c
	}
	if len(changes) != 3 {
		t.Fatalf("changes for %v, want new, held and leaving", keys(byName))
	}
	patch := func(name string) map[string]map[string]any {
		var p map[string]map[string]any
		if err := json.Unmarshal(byName[name].patch, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if l := patch("new")["metadata"]["labels"].(map[string]any); l[policies.IsolatedLabel] != "true" || l[policies.ProjectLabel] != "p-a" || len(l) != 2 {
		t.Errorf("new: label patch %v (other labels must not appear)", l)
	}
	if _, ok := patch("held")["metadata"]["labels"]; ok {
		t.Errorf("held namespace got a label patch: %s", byName["held"].patch)
	}
	held := byName["held"].to
	if held.Isolated || held.State != policies.Error || !strings.Contains(strings.Join(held.Problems, ""), "pni-broken (creating it failed)") {
		t.Errorf("held status %+v", held)
	}
	l := patch("leaving")["metadata"]["labels"].(map[string]any)
	if v, ok := l[policies.IsolatedLabel]; !ok || v != nil || l["calico-pni.io/stray"] != nil {
		t.Errorf("leaving: label patch %v must remove the isolated label and stray calico-pni labels", l)
	}
	if len(final) != len(desired) || final[2].Status.Isolated || final[2].Status.State != policies.Error {
		t.Errorf("the held namespace must end up not isolated, in error: %+v", final[2].Status)
	}
	if !reflect.DeepEqual(final[4], desired[4]) {
		t.Errorf("a namespace being deleted must be left as desired: %+v", final[4])
	}
}

func TestPlanNamespacesReportsRestoredLabels(t *testing.T) {
	d := nsState("a", true, "p-a", "pni-project-p-a")
	live := map[string]namespaceView{"a": {
		labels:      map[string]string{policies.IsolatedLabel: "true", policies.ProjectLabel: "p-forged"},
		annotations: map[string]string{policies.StatusAnnotation: d.Status.Encode()},
	}}
	changes, _ := planNamespaces([]policies.NamespaceState{d}, live, func(string) (bool, string) { return true, "" })
	if len(changes) != 1 || !reflect.DeepEqual(changes[0].restored, []string{policies.ProjectLabel}) || changes[0].from == nil {
		t.Errorf("changes %+v", changes)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

// The spec memory answers from the cache while the resourceVersion is the
// same, and decodes again when it changes.
func TestSpecsRemembersByResourceVersion(t *testing.T) {
	p := testPolicy("pni-a", calico.ClassAllow, "a == 'x'")
	u := api328.Object(p)
	u.SetResourceVersion("1")
	s := specs{}
	first := s.canon(u)
	if string(first) != string(calico.CanonicalSpec(p.Spec)) {
		t.Fatalf("canon %s", first)
	}
	// Same resourceVersion: remembered, even if the object were different.
	u.Object["spec"].(map[string]any)["order"] = int64(1)
	if string(s.canon(u)) != string(first) {
		t.Error("decoded again although the resourceVersion did not change")
	}
	u.SetResourceVersion("2")
	if string(s.canon(u)) == string(first) {
		t.Error("a new resourceVersion was answered from memory")
	}
	s.keep(nil)
	if len(s) != 0 {
		t.Errorf("entries of unmanaged objects kept: %v", s)
	}
}
