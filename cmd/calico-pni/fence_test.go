package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fakeLock stands in for the Lease: it only answers whether a renewal
// succeeds.
type fakeLock struct {
	resourcelock.Interface
	fail bool
}

func (l *fakeLock) Identity() string { return "me_1234" }
func (l *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	if l.fail {
		return errors.New("connection refused")
	}
	return nil
}
func (l *fakeLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.Create(ctx, r)
}

func TestLeaseFence(t *testing.T) {
	lock := &fakeLock{}
	f := newLeaseFence(lock, time.Hour)
	var sent []string
	backend := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.Method+" "+r.URL.Path)
		return httptest.NewRecorder().Result(), nil
	})
	rt := f.wrap(backend)
	do := func(method, path string) error {
		req := httptest.NewRequest(method, "https://api"+path, nil)
		_, err := rt.RoundTrip(req)
		return err
	}
	write := "/apis/crd.projectcalico.org/v1/globalnetworkpolicies/default.pni-allow-dns"
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me_1234"}

	// Before this replica ever held the lease: reads, lease and events go,
	// writes do not.
	if err := do(http.MethodPut, write); err == nil || !strings.Contains(err.Error(), "does not hold the leader lease") {
		t.Errorf("a write before leading: %v", err)
	}
	for _, ok := range [][2]string{{http.MethodGet, write}, {http.MethodPut, "/apis/coordination.k8s.io/v1/namespaces/x/leases/calico-pni"}, {http.MethodPost, "/api/v1/namespaces/default/events"}, {http.MethodPatch, "/api/v1/namespaces/default/events/e1"}} {
		if err := do(ok[0], ok[1]); err != nil {
			t.Errorf("%s %s: %v", ok[0], ok[1], err)
		}
	}
	// After a renewal that succeeded: writes go.
	if err := f.Update(context.Background(), mine); err != nil {
		t.Fatal(err)
	}
	if err := do(http.MethodPatch, "/api/v1/namespaces/shop"); err != nil {
		t.Errorf("a write right after a renewal: %v", err)
	}
	// A renewal that failed does not extend the window; one older than
	// the window closes it.
	lock.fail = true
	_ = f.Update(context.Background(), mine)
	f.renewed.Store(f.now() - int64(2*time.Hour))
	if err := do(http.MethodDelete, write); err == nil || !strings.Contains(err.Error(), "last renewed") {
		t.Errorf("a write long after the last renewal: %v", err)
	}
	// Releasing the lease closes it at once.
	lock.fail = false
	_ = f.Update(context.Background(), mine)
	if err := do(http.MethodPost, write); err != nil {
		t.Errorf("a write after renewing again: %v", err)
	}
	_ = f.Update(context.Background(), resourcelock.LeaderElectionRecord{})
	if err := do(http.MethodPost, write); err == nil {
		t.Error("a write after releasing the lease went through")
	}
	want := []string{
		"GET " + write, "PUT /apis/coordination.k8s.io/v1/namespaces/x/leases/calico-pni",
		"POST /api/v1/namespaces/default/events", "PATCH /api/v1/namespaces/default/events/e1",
		"PATCH /api/v1/namespaces/shop", "POST " + write,
	}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests that reached the server:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
}
