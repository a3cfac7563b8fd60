package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// leaseFence lets the daemon's writes through only while this replica holds
// the leader lease and renewed it recently enough that no other replica can
// have taken it over.
//
// client-go's leader election tells a leader that it lost the lease only
// when its own renewals have failed for the renew deadline; a replica that
// was paused (a stopped process, a long garbage collection, a cut
// connection) wakes up still believing it leads, with a pass half done. A
// standby takes the lease no earlier than the lease duration after it saw
// the last renewal, which the leader sent before that. So a write sent
// within the renew deadline of sending a renewal that succeeded is safe,
// with the difference of the two durations as the margin for the write to
// reach the API server. Every write of the controller passes through this
// check, just before it goes on the wire.
type leaseFence struct {
	resourcelock.Interface
	// window is how long after sending a successful renewal writes may go.
	window time.Duration
	// origin and renewed measure time on the monotonic clock.
	origin  time.Time
	renewed atomic.Int64 // nanoseconds since origin; 0 when not holding
}

func newLeaseFence(lock resourcelock.Interface, window time.Duration) *leaseFence {
	return &leaseFence{Interface: lock, window: window, origin: time.Now()}
}

func (f *leaseFence) now() int64 { return int64(time.Since(f.origin)) }

// Create and Update record when a renewal that names this replica as the
// holder was sent; releasing the lease (an empty holder) closes the fence.
func (f *leaseFence) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := f.now()
	err := f.Interface.Create(ctx, ler)
	f.record(sent, ler, err)
	return err
}

func (f *leaseFence) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := f.now()
	if ler.HolderIdentity != f.Identity() {
		f.renewed.Store(0)
	}
	err := f.Interface.Update(ctx, ler)
	f.record(sent, ler, err)
	return err
}

func (f *leaseFence) record(sent int64, ler resourcelock.LeaderElectionRecord, err error) {
	if err == nil && ler.HolderIdentity == f.Identity() {
		f.renewed.Store(max(sent, 1))
	}
}

// check returns an error unless a write may go now.
func (f *leaseFence) check() error {
	renewed := f.renewed.Load()
	if renewed == 0 {
		return fmt.Errorf("not writing: this replica does not hold the leader lease")
	}
	if age := time.Duration(f.now() - renewed); age > f.window {
		return fmt.Errorf("not writing: the leader lease was last renewed %s ago (more than --renew-deadline %s); another replica may lead now", age.Round(time.Millisecond), f.window)
	}
	return nil
}

// wrap guards a transport: requests that change state are refused when the
// fence is closed. Reads, the lease itself and events are never held back.
func (f *leaseFence) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !strings.Contains(req.URL.Path, "/leases/") && !strings.HasSuffix(req.URL.Path, "/events") && !strings.Contains(req.URL.Path, "/events/") {
				if err := f.check(); err != nil {
					return nil, err
				}
			}
		}
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
