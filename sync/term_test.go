package sync_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/sync"
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
	createNamespace(t, e, testbed.Namespace("t-shop", cluster, "p-term"))

	r := start(t, e, cfg, func(o *sync.Options) { o.Debounce = time.Hour })
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
