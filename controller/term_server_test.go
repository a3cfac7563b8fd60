package controller_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// A replica that leads again after standing by must not trust what it
// remembers of its own writes in the term before: the replica that led in
// between (or a user) may have undone them. Here the replica created a
// project's allow policy in its first term; while it stood by, the policy
// was deleted; its first pass as leader again must write it back.
//
// The debounce is longer than the test, so each term makes its first
// pass (a refresh) and no other: nothing else checks the replica's memory
// against its caches in between, as in a failover under load.
func TestANewTermTrustsNoMemoryOfTheLast(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	gnp := e.Dynamic.Resource(v128.Resource("GlobalNetworkPolicy"))
	createNamespace(t, e, testbed.Namespace("t-shop", clusterID, "p-term"))

	r := start(t, e, cfg, func(o *controller.Options) { o.Debounce = time.Hour })
	r.waitReady(t)
	if err := converged(e, cfg, v128); err != nil {
		t.Fatalf("after the first term's first pass: %v", err)
	}

	r.stepDown()
	project := v128.StoredName("pni-project-p-term")
	if err := gnp.Delete(ctx, project, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	res := r.waitPass(t, "refresh", r.lead)
	if res.Err != nil {
		t.Fatalf("the second term's first pass failed: %v", res.Err)
	}
	if res.Writes["create"] != 1 {
		t.Errorf("the second term's first pass made %v, want one create (%s)", res.Writes, project)
	}
	if err := converged(e, cfg, v128); err != nil {
		t.Errorf("after the second term's first pass: %v", err)
	}
}

// Leader election may begin a term while the last one is still ending;
// the controller runs them one after the other, so the old term's
// teardown (its queue, its watches) never silences the new one. Twenty
// terms begin here, each as the last is told to end; the last one must
// still follow the cluster's changes.
func TestTermsNeverOverlap(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	for range 20 {
		r.endTerm()
		r.lead()
	}
	createNamespace(t, e, testbed.Namespace("t-late", clusterID, "p-late"))
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	st, _ := status(t, e, "t-late")
	if st.State != policies.Isolated {
		t.Errorf("t-late is %q after the terms, want isolated", st.State)
	}
}
