package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/plan"
)

func policyAt(name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetName(name)
	u.SetResourceVersion(rv)
	return u
}

// The written object stands in while the cache still shows what the write
// was planned against, and the cache is believed once it moved on.
func TestRecentStandsInUntilTheCacheCatchesUp(t *testing.T) {
	r := newRecent()
	r.NamespaceWritten("a", "10", plan.Namespace{ResourceVersion: "11", Annotations: map[string]string{"k": "written"}})
	r.NamespaceWritten("b", "20", plan.Namespace{ResourceVersion: "21"})
	r.PolicyWritten("/created", "", policyAt("created", "5"))
	r.PolicyWritten("/updated", "6", policyAt("updated", "7"))
	r.PolicyWritten("/deleted", "8", nil)

	s := &cluster.State{
		Namespaces: map[string]plan.Namespace{
			"a": {ResourceVersion: "10"}, // behind: the write stands in
			"b": {ResourceVersion: "22"}, // someone changed it since: believe the cache
		},
		Policies: []*unstructured.Unstructured{policyAt("updated", "6"), policyAt("deleted", "8"), policyAt("other", "1")},
	}
	r.apply(s)
	if s.Namespaces["a"].Annotations["k"] != "written" || s.Namespaces["b"].ResourceVersion != "22" {
		t.Errorf("namespaces %+v", s.Namespaces)
	}
	got := map[string]string{}
	for _, u := range s.Policies {
		got[u.GetName()] = u.GetResourceVersion()
	}
	want := map[string]string{"created": "5", "updated": "7", "other": "1"}
	if len(got) != len(want) || got["created"] != "5" || got["updated"] != "7" || got["other"] != "1" {
		t.Errorf("policies %v, want %v", got, want)
	}
	if _, kept := r.namespaces["b"]; kept {
		t.Error("an entry the cache moved past was kept")
	}

	// Once the cache shows the writes, every entry goes.
	s = &cluster.State{
		Namespaces: map[string]plan.Namespace{"a": {ResourceVersion: "11"}},
		Policies:   []*unstructured.Unstructured{policyAt("created", "5"), policyAt("updated", "7")},
	}
	r.apply(s)
	if len(r.namespaces) != 0 || len(r.policies) != 0 {
		t.Errorf("entries left: %v %v", r.namespaces, r.policies)
	}
}
