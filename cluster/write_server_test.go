package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/metrics"
	"github.com/calico-pni/calico-pni/plan"
)

var api328 = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}

func testPolicy(name string, class calico.Class, selector string) calico.Policy {
	order := 2000.0
	return calico.Policy{Name: name, Class: class, Description: "d " + name, Spec: calico.GlobalNetworkPolicySpec{
		Order: &order, NamespaceSelector: selector, Types: []calico.PolicyType{calico.Ingress},
	}}
}

// A planned update made from a cache that went stale meets a conflict on
// the real API server; the writer reads the object again and retries, and
// the server ends up with the desired object.
func TestWriteConflictIsRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	e, err := testbed.Start(testbed.Options{CalicoV1: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx := context.Background()
	restCfg, writes := testbed.CountWrites(e.Config)
	w := &Writer{Dyn: dynamic.NewForConfigOrDie(restCfg), API: api328, Workers: 1, Metrics: metrics.New(nil), Log: slog.New(slog.DiscardHandler)}

	old := testPolicy("pni-a", calico.ClassAllow, "a == 'old'")
	r := NewResults()
	w.ApplyPolicies(ctx, []plan.PolicyWrite{{Verb: plan.Create, Name: old.Name, Class: old.Class, Object: api328.Object(old), Policy: old}}, r)
	if len(r.Failed) > 0 {
		t.Fatal(r.Failed)
	}
	gnp := e.Dynamic.Resource(api328.Resource("GlobalNetworkPolicy"))
	cached, err := gnp.Get(ctx, "default.pni-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone changes the object after calico-pni read it.
	edited := cached.DeepCopy()
	edited.SetLabels(map[string]string{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: "allow", "edited": "yes"})
	if _, err := gnp.Update(ctx, edited, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	desired := testPolicy("pni-a", calico.ClassAllow, "a == 'new'")
	writes0 := writes.Count()
	r = NewResults()
	w.ApplyPolicies(ctx, []plan.PolicyWrite{{Verb: plan.Update, Name: desired.Name, Class: desired.Class, Object: plan.MergeForUpdate(cached, api328.Object(desired)), Policy: desired}}, r)
	if len(r.Failed) > 0 || !r.Done["pni-a"] {
		t.Fatalf("update failed: %v", r.Failed)
	}
	puts := writes.Since(writes0)
	if len(puts) != 2 || !strings.HasPrefix(puts[0], "PUT") || !strings.HasPrefix(puts[1], "PUT") {
		t.Errorf("writes %v, want a conflicting PUT and a retried one", puts)
	}
	got, err := gnp.Get(ctx, "default.pni-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := calico.SpecOf(got)
	if err != nil || !calico.SpecEqual(spec, desired.Spec) {
		t.Errorf("spec after the retry %+v (%v)", spec, err)
	}
	if got.GetLabels()["edited"] != "yes" {
		t.Errorf("the retry dropped a label someone else added: %v", got.GetLabels())
	}

	// A policy of the same name without calico-pni's label is refused.
	unmanaged := api328.Object(testPolicy("pni-b", calico.ClassAllow, "a == 'x'"))
	unmanaged.SetLabels(map[string]string{"team": "x"})
	theirs, err := gnp.Create(ctx, unmanaged, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mine := testPolicy("pni-b", calico.ClassAllow, "a == 'mine'")
	r = NewResults()
	w.ApplyPolicies(ctx, []plan.PolicyWrite{{Verb: plan.Create, Name: mine.Name, Class: mine.Class, Object: api328.Object(mine), Policy: mine}}, r)
	if err := r.Failed["pni-b"]; err == nil || !strings.Contains(err.Error(), "is not managed by calico-pni") {
		t.Errorf("writing over an unmanaged policy: %v", err)
	}
	after, err := gnp.Get(ctx, "default.pni-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetResourceVersion() != theirs.GetResourceVersion() {
		t.Errorf("the unmanaged policy was changed: resourceVersion %s, was %s: %v", after.GetResourceVersion(), theirs.GetResourceVersion(), after.Object)
	}
}
