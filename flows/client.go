package flows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/calico-pni/calico-pni/config"
	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Address is Goldmane's host:port; ServerName the name its
	// certificate must carry (blank: the host of Address).
	Address, ServerName string
	// TLS makes the client's TLS configuration at each attempt.
	TLS TLSSource
	// Store receives the flows.
	Store *Store
	// Backoff spaces attempts (zero: DefaultBackoff).
	Backoff Backoff
	// StallAfter ends a stream that has sent nothing for so long, and
	// starts another (default 2 minutes): Goldmane sends the flows of every
	// 15-second interval that had traffic, so a silent stream is most
	// likely a dead connection.
	StallAfter time.Duration
	// Log receives a line per failed attempt (default: discarded).
	Log *slog.Logger
	// Clock gives the times of the status (default time.Now); Random the
	// jitter of the backoff (default math/rand/v2).
	Clock  func() time.Time
	Random func() float64
}

// DefaultStallAfter is ClientOptions.StallAfter's default.
const DefaultStallAfter = 2 * time.Minute

// OptionsFromConfig returns the options of the flows section, with the
// TLS files read at each attempt.
func OptionsFromConfig(f config.Flows, store *Store) ClientOptions {
	return ClientOptions{
		Address:    f.Address,
		ServerName: f.ServerName,
		TLS:        TLSFiles(f.TLS.CAFile, f.TLS.CertFile, f.TLS.KeyFile),
		Store:      store,
	}
}

// StoreOptionsFromConfig returns the Store bounds of the flows section.
func StoreOptionsFromConfig(f config.Flows) StoreOptions {
	return StoreOptions{Window: f.Window.Duration, MaxGap: f.MaxGap.Duration}
}

// Client streams flows from Goldmane into a Store, for as long as Run
// runs: it reconnects with backoff after every failure (Goldmane
// restarting, unreachable, refusing the certificate) and resumes each new
// stream a little before the newest flow it has (Store.ResumeFrom), so that
// a reconnect neither misses what Goldmane still holds nor counts anything
// twice. Nothing that reads the Store or the Status waits on it.
type Client struct {
	opts ClientOptions

	mu      sync.Mutex
	status  Status
	changed chan struct{}
}

// NewClient checks the options and returns a Client that is not running.
func NewClient(opts ClientOptions) (*Client, error) {
	switch {
	case opts.Address == "":
		return nil, errors.New("flows client: no Goldmane address (flows.address)")
	case opts.TLS == nil:
		return nil, errors.New("flows client: no TLS configuration: Goldmane accepts mutual TLS only (flows.tls)")
	case opts.Store == nil:
		return nil, errors.New("flows client: no Store to feed")
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = DefaultStallAfter
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Random == nil {
		opts.Random = rand.Float64
	}
	return &Client{
		opts:    opts,
		status:  Status{Address: opts.Address, State: StateOff},
		changed: make(chan struct{}),
	}, nil
}

// Run streams until ctx ends. It returns nothing: every failure is
// retried and reported in Status.
func (c *Client) Run(ctx context.Context) {
	defer c.update(func(s *Status) { s.State, s.Since = StateOff, c.opts.Clock() })
	attempt := 0
	for ctx.Err() == nil {
		c.update(func(s *Status) {
			s.State, s.Since = StateConnecting, c.opts.Clock()
			s.Attempts++
		})
		delivered, err := c.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("Goldmane at %s ended the stream", c.opts.Address)
		}
		if delivered {
			attempt = 0
		}
		delay := c.opts.Backoff.Delay(attempt, c.opts.Random())
		attempt++
		now := c.opts.Clock()
		c.update(func(s *Status) {
			s.State, s.Since = StateUnavailable, now
			s.LastError, s.LastErrorAt, s.RetryAt = err.Error(), now, now.Add(delay)
		})
		c.opts.Log.Warn("flow logs: Goldmane stream failed", "address", c.opts.Address, "error", err, "retryIn", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// errStalled ends a stream that sent nothing for StallAfter.
var errStalled = errors.New("stalled")

// stream runs one connection and one stream to its end. It reports
// whether any flow arrived, and why the stream ended.
func (c *Client) stream(ctx context.Context) (delivered bool, err error) {
	conn, err := dial(c.opts.Address, c.opts.ServerName, c.opts.TLS)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.opts.StallAfter, func() { cancel(errStalled) })
	defer stall.Stop()

	stream, err := pb.NewFlowsClient(conn).Stream(sctx, c.request())
	if err != nil {
		return false, c.describe(err, sctx)
	}
	// Ready means the server accepted the TLS handshake and spoke HTTP/2:
	// a server that refuses the client's certificate never gets there.
	if conn.GetState() == connectivity.Ready {
		c.update(func(s *Status) { s.State, s.Since = StateConnected, c.opts.Clock() })
	}
	for {
		res, err := stream.Recv()
		if err != nil {
			return delivered, c.describe(err, sctx)
		}
		stall.Reset(c.opts.StallAfter)
		f := FromProto(res.GetFlow())
		added := c.opts.Store.Add(f)
		c.received(f, added, !delivered)
		delivered = true
	}
}

// request asks for the flows from the resume point, or, on the first
// stream, for all Goldmane holds of the window (a negative start is
// relative to Goldmane's clock).
func (c *Client) request() *pb.FlowStreamRequest {
	req := &pb.FlowStreamRequest{AggregationInterval: int64(Interval / time.Second)}
	if from, ok := c.opts.Store.ResumeFrom(); ok {
		req.StartTimeGte = from
	} else {
		req.StartTimeGte = -int64(c.opts.Store.WindowLength() / time.Second)
	}
	return req
}

func (c *Client) received(f Flow, added, first bool) {
	now := c.opts.Clock()
	ev := c.opts.Store.EvidenceSince()
	c.update(func(s *Status) {
		if first || s.State != StateStreaming {
			s.State, s.Since = StateStreaming, now
		}
		s.LastMessageAt = now
		if f.End.After(s.LastFlowEnd) {
			s.LastFlowEnd = f.End
		}
		s.Received++
		if !added {
			s.Duplicates++
		}
		s.EvidenceSince = ev
	})
}

// describe turns a stream's end into a sentence.
func (c *Client) describe(err error, sctx context.Context) error {
	if errors.Is(context.Cause(sctx), errStalled) {
		return fmt.Errorf("Goldmane at %s sent nothing for %v; reconnecting", c.opts.Address, c.opts.StallAfter)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("Goldmane at %s ended the stream", c.opts.Address)
	}
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("Goldmane at %s: %s: %s", c.opts.Address, s.Code(), s.Message())
	}
	return fmt.Errorf("Goldmane at %s: %w", c.opts.Address, err)
}

// Status returns the Client's state. Evidence is read from the Store now,
// so that it lapses while nothing arrives.
func (c *Client) Status() Status {
	ev := c.opts.Store.EvidenceSince()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.EvidenceSince = ev
	return s
}

// Changed returns a channel that is closed at the next change of Status.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Client) update(change func(*Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(&c.status)
	close(c.changed)
	c.changed = make(chan struct{})
}
