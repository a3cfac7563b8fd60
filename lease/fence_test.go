package lease

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
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

// testClock is a clock the test moves; like the boot clock, it counts
// any time the machine spends suspended, so a suspend is a jump.
type testClock struct {
	mu  sync.Mutex
	now time.Duration
}

func (c *testClock) read() (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now, nil
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

// fenceWithClock is a fence on lock whose clock the test moves.
func fenceWithClock(lock resourcelock.Interface, window time.Duration) (*Fence, *testClock) {
	c := &testClock{now: 5 * time.Hour}
	f := NewFence(lock, window)
	f.clock = c.read
	return f, c
}

func TestLeaseFence(t *testing.T) {
	lock := &fakeLock{}
	f, clock := fenceWithClock(lock, time.Hour)
	var sent []string
	backend := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.Method+" "+r.URL.Path)
		return httptest.NewRecorder().Result(), nil
	})
	rt := f.Wrap(backend)
	f.writes = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, "fenced "+r.Method+" "+r.URL.Path)
		return httptest.NewRecorder().Result(), nil
	})
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
	// A renewal that failed does not extend the window: 40 minutes after
	// the last success a renewal fails, and 30 minutes later, an hour and
	// ten minutes after the success, the window has closed.
	clock.advance(40 * time.Minute)
	lock.fail = true
	if err := f.Update(context.Background(), mine); err == nil {
		t.Fatal("the failing renewal succeeded")
	}
	if err := do(http.MethodPatch, "/api/v1/namespaces/shop"); err != nil {
		t.Errorf("a write within the window of the last success: %v", err)
	}
	clock.advance(30 * time.Minute)
	if err := do(http.MethodDelete, write); err == nil || !strings.Contains(err.Error(), "last renewed 1h10m0s ago") {
		t.Errorf("a write 30 minutes after a failed renewal, 70 after the last success: %v", err)
	}
	// Renewed again, then the machine is suspended for two hours: the
	// clock counts the suspend and the window closes.
	lock.fail = false
	_ = f.Update(context.Background(), mine)
	if err := do(http.MethodPost, write); err != nil {
		t.Errorf("a write after renewing again: %v", err)
	}
	clock.advance(2 * time.Hour)
	if err := do(http.MethodPost, write); err == nil || !strings.Contains(err.Error(), "last renewed 2h0m0s ago") {
		t.Errorf("a write after a suspend longer than the lease: %v", err)
	}
	// Releasing the lease closes it at once.
	_ = f.Update(context.Background(), mine)
	if err := do(http.MethodPost, write); err != nil {
		t.Errorf("a write after renewing once more: %v", err)
	}
	_ = f.Update(context.Background(), resourcelock.LeaderElectionRecord{})
	if err := do(http.MethodPost, write); err == nil {
		t.Error("a write after releasing the lease went through")
	}
	want := []string{
		"GET " + write, "PUT /apis/coordination.k8s.io/v1/namespaces/x/leases/calico-pni",
		"POST /api/v1/namespaces/default/events", "PATCH /api/v1/namespaces/default/events/e1",
		"fenced PATCH /api/v1/namespaces/shop", "fenced PATCH /api/v1/namespaces/shop",
		"fenced POST " + write, "fenced POST " + write,
	}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests that reached the server:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
}

// The second check: a write request that passed the first check before the
// process froze, and goes on when it continues, must not reach the API
// server. The test sends it on the real write transport (HTTP/2 over TLS,
// as to an API server) after closing the fence behind the first check's
// back.
func TestFencedConnections(t *testing.T) {
	// The server's handlers run on goroutines of their own.
	var mu sync.Mutex
	var received []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		received = append(received, r.Proto+" "+r.Method+" "+r.URL.Path)
	}))
	srv.EnableHTTP2 = true
	// The refused handshake of the first write shows in the server's
	// log as an EOF; the test reads what the server received instead.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	f, clock := fenceWithClock(&fakeLock{}, time.Hour)
	if err := f.UseWriteTransport(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}); err != nil {
		t.Fatal(err)
	}
	send := func(path string) error {
		req, err := http.NewRequest(http.MethodPatch, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.writes.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := send("/api/v1/namespaces/before"); err == nil || !strings.Contains(err.Error(), "does not hold the leader lease") {
		t.Errorf("a write on the fenced transport before leading: %v", err)
	}
	if err := f.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me_1234"}); err != nil {
		t.Fatal(err)
	}
	if err := send("/api/v1/namespaces/leading"); err != nil {
		t.Errorf("a write while leading: %v", err)
	}
	// The lease runs out while the connection is open. The refused write
	// breaks the connection, and the HTTP/2 client reports either the
	// fence's error or its own closing of the connection, whichever its
	// goroutines see first (about one run in a hundred the latter); what
	// counts is that the server never receives the request (below).
	clock.advance(2 * time.Hour)
	if err := send("/api/v1/namespaces/frozen"); err == nil || !strings.Contains(err.Error(), "last renewed") && !strings.Contains(err.Error(), "client connection force closed") {
		t.Errorf("a write on an open connection after the lease ran out: %v", err)
	}
	// Renewed again: a new connection carries the writes.
	if err := f.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me_1234"}); err != nil {
		t.Fatal(err)
	}
	if err := send("/api/v1/namespaces/again"); err != nil {
		t.Errorf("a write after renewing again: %v", err)
	}
	want := "HTTP/2.0 PATCH /api/v1/namespaces/leading\nHTTP/2.0 PATCH /api/v1/namespaces/again"
	mu.Lock()
	got := strings.Join(received, "\n")
	mu.Unlock()
	if got != want {
		t.Errorf("the server received:\n%s\nwant:\n%s", got, want)
	}
}
