package lease

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/transport"
)

// Fence lets the daemon's writes through only while this replica holds
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
// reach the API server.
//
// Every write of the controller passes the check twice: when the request
// is made (which gives the clear error), and again for every chunk of bytes
// it puts on the socket, since writes travel on connections of their own
// (UseWriteTransport). The second check is what holds when the process froze
// after the first: between a request's start and its bytes on the wire lie
// a goroutine switch and the HTTP/2 framing, long enough for a SIGSTOP to
// land in (the failover test caught one there: a create went out after
// the resume, under a lease another replica held). After the second check
// only a system call remains.
type Fence struct {
	resourcelock.Interface
	// window is how long after sending a successful renewal writes may go.
	window time.Duration
	// writes carries the requests that change state, on connections
	// whose every write checks the fence (nil: they share the reads'
	// transport, as in unit tests).
	writes http.RoundTripper
	// clock measures the window. It must count the time the machine
	// spent suspended (bootClock): Go's monotonic clock is Linux's
	// CLOCK_MONOTONIC, which stands still while a VM is suspended, so a
	// replica resumed after a suspend longer than the lease would find
	// its last renewal fresh and write under another replica's lease.
	clock clock
	// renewed is the clock's reading, in nanoseconds, when the last
	// renewal that succeeded was sent; 0 when not holding.
	renewed atomic.Int64
}

// clock tells the time since an arbitrary origin, or why it cannot.
type clock func() (time.Duration, error)

// NewFence puts a fence behind lock: writes go within window of sending a
// renewal that succeeded.
func NewFence(lock resourcelock.Interface, window time.Duration) *Fence {
	return &Fence{Interface: lock, window: window, clock: bootClock}
}

func (f *Fence) now() (int64, error) {
	d, err := f.clock()
	return int64(d), err
}

// Create and Update record when a renewal that names this replica as the
// holder was sent; releasing the lease (an empty holder) closes the fence.
func (f *Fence) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent, clockErr := f.now()
	err := f.Interface.Create(ctx, ler)
	f.record(sent, clockErr, ler, err)
	return err
}

func (f *Fence) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent, clockErr := f.now()
	if ler.HolderIdentity != f.Identity() {
		f.renewed.Store(0)
	}
	err := f.Interface.Update(ctx, ler)
	f.record(sent, clockErr, ler, err)
	return err
}

// record keeps the time a renewal that succeeded was sent. Without a
// reading of the clock nothing is kept, and the fence closes as the last
// reading ages (check fails on the clock too).
func (f *Fence) record(sent int64, clockErr error, ler resourcelock.LeaderElectionRecord, err error) {
	if err == nil && clockErr == nil && ler.HolderIdentity == f.Identity() {
		f.renewed.Store(max(sent, 1))
	}
}

// Check returns an error unless a write may go now.
func (f *Fence) Check() error {
	renewed := f.renewed.Load()
	if renewed == 0 {
		return fmt.Errorf("not writing: this replica does not hold the leader lease")
	}
	now, err := f.now()
	if err != nil {
		return fmt.Errorf("not writing: the lease fence cannot read its clock: %w", err)
	}
	if age := time.Duration(now - renewed); age > f.window {
		return fmt.Errorf("not writing: the leader lease was last renewed %s ago (more than --renew-deadline %s); another replica may lead now", age.Round(time.Millisecond), f.window)
	}
	return nil
}

// Wrap guards a transport: requests that change state are refused when the
// fence is closed, and go on the fenced connections of UseWriteTransport.
// Reads, the lease itself and events are never held back.
func (f *Fence) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !strings.Contains(req.URL.Path, "/leases/") && !strings.HasSuffix(req.URL.Path, "/events") && !strings.Contains(req.URL.Path, "/events/") {
				if err := f.Check(); err != nil {
					return nil, err
				}
				if f.writes != nil {
					return f.writes.RoundTrip(req)
				}
			}
		}
		return rt.RoundTrip(req)
	})
}

// UseWriteTransport gives the guarded writes a transport of their own to
// the API server of cfg: the same TLS settings and proxy, and connections
// whose every write checks the fence (fencedConn). It is the bare
// transport: the requests that reach Wrap already carry their credentials,
// user agent and impersonation, which client-go adds outside it.
func (f *Fence) UseWriteTransport(cfg *rest.Config) error {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return fmt.Errorf("the transport for writes: %w", err)
	}
	dial := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if tc.DialHolder != nil {
		dial = tc.DialHolder.Dial
	}
	bare := &transport.Config{
		TLS:                tc.TLS,
		Proxy:              tc.Proxy,
		DisableCompression: tc.DisableCompression,
		DialHolder: &transport.DialHolder{Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			conn, err := dial(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return &fencedConn{Conn: conn, fence: f}, nil
		}},
	}
	rt, err := transport.New(bare)
	if err != nil {
		return fmt.Errorf("the transport for writes: %w", err)
	}
	f.writes = rt
	return nil
}

// fencedConn is a connection that carries writes to the API server: it
// sends nothing while the fence is closed. A refused write breaks the
// connection (TLS does not resume after a failed write); the next write
// request dials a new one.
type fencedConn struct {
	net.Conn
	fence *Fence
}

func (c *fencedConn) Write(b []byte) (int, error) {
	if err := c.fence.Check(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
