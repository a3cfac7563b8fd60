package flows_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/flows/goldmanetest"
)

// fastBackoff keeps reconnects quick in tests.
var fastBackoff = flows.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: 0.2}

// cluster is a test Goldmane, its CA and a client certificate it accepts.
type cluster struct {
	ca     *goldmanetest.CA
	server *goldmanetest.Server
	client goldmanetest.KeyPair
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	ca, err := goldmanetest.NewCA("tigera-ca")
	if err != nil {
		t.Fatal(err)
	}
	server, err := goldmanetest.Start(goldmanetest.Options{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	client, err := ca.Client("calico-pni")
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{ca: ca, server: server, client: client}
}

// run starts a client of the store with the given TLS, stopped at the
// end of the test.
func run(t testing.TB, address string, source flows.TLSSource, store *flows.Store, tune ...func(*flows.ClientOptions)) *flows.Client {
	t.Helper()
	opts := flows.ClientOptions{Address: address, TLS: source, Store: store, Backoff: fastBackoff}
	for _, f := range tune {
		f(&opts)
	}
	c, err := flows.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// waitFor waits until the client's status satisfies cond. It waits on
// the client's changes, not on time; the deadline only turns a hang into
// a failure.
func waitFor(t *testing.T, c *flows.Client, what string, cond func(flows.Status) bool) flows.Status {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		changed := c.Changed()
		if s := c.Status(); cond(s) {
			return s
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waiting for %s; status %+v", what, c.Status())
		}
	}
}

func received(n int64) func(flows.Status) bool {
	return func(s flows.Status) bool { return s.Received >= n }
}

// intervals returns n interval starts, the last one a minute ago.
func intervals(n int) []time.Time {
	last := time.Now().Add(-time.Minute).Truncate(flows.Interval)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = last.Add(-time.Duration(n-1-i) * flows.Interval)
	}
	return out
}

func TestClientStreamsPendingDeniesIntoTheStore(t *testing.T) {
	c := newCluster(t)
	for _, at := range intervals(4) {
		c.server.Publish(goldmanetest.Sample(at)...)
	}
	store := flows.NewStore(flows.StoreOptions{})
	client := run(t, c.server.Address(), flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key), store)
	st := waitFor(t, client, "16 flows", received(16))

	if st.State != flows.StateStreaming || !st.Available() || !strings.HasPrefix(st.Line(), "flow evidence from "+c.server.Address()) {
		t.Errorf("status %+v, line %q", st, st.Line())
	}
	// The first stream asks for the whole window (relative to Goldmane's
	// clock) in 15-second intervals.
	if req := c.server.Requests()[0]; req.GetStartTimeGte() != -86400 || req.GetAggregationInterval() != 15 {
		t.Errorf("first request %v", req)
	}
	of := func(ns string) string {
		return map[string]string{"shop": "p-shop", "cart": "p-shop", "report": "p-data"}[ns]
	}
	type line struct {
		project, ns, peerProject, peer string
		port                           int
		flows, connections             int64
	}
	var got []line
	for _, r := range flows.Summarize(store.Pending(), of, 0).Rows {
		got = append(got, line{r.Project, r.Namespace, r.PeerProject, r.PeerNamespace, r.Port, r.Flows, r.Connections})
	}
	// Oracle: the sample's pending traces (goldmanetest/recorded.go): the
	// wall denies of shop from report and of cart from the unknown
	// namespace, four intervals of two connections each.
	want := []line{
		{"p-shop", "cart", "", "gone", 80, 4, 8},
		{"p-shop", "shop", "p-data", "report", 5432, 4, 8},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("pending denies\n%+v\nwant\n%+v", got, want)
	}
	if n := len(store.Recent()); n != 4 {
		t.Errorf("%d flows observed, want the 4 flow keys of the sample", n)
	}
}

// Goldmane refuses a client whose certificate its CA did not sign, and
// one without a certificate; the client refuses a Goldmane its CA did
// not sign. None of them gets a stream.
func TestMutualTLSRefusals(t *testing.T) {
	c := newCluster(t)
	c.server.Publish(goldmanetest.Sample(intervals(1)[0])...)
	other, err := goldmanetest.NewCA("someone-else")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Client("calico-pni")
	if err != nil {
		t.Fatal(err)
	}
	noCert := func() (*tls.Config, error) {
		cfg, err := flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key)()
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = nil
		return cfg, nil
	}
	tests := []struct {
		name   string
		source flows.TLSSource
		says   string
	}{
		// The server's refusal reaches the client as a TLS alert or as a
		// closed connection, depending on timing: both are Unavailable.
		{"a client certificate of another CA", flows.TLSPEM(c.ca.PEM, stranger.Cert, stranger.Key), "Unavailable"},
		{"no client certificate", noCert, "Unavailable"},
		{"a server the client's CA did not sign", flows.TLSPEM(other.PEM, c.client.Cert, c.client.Key), "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := flows.NewStore(flows.StoreOptions{})
			client := run(t, c.server.Address(), tt.source, store)
			st := waitFor(t, client, "two refused attempts", func(s flows.Status) bool {
				return s.State == flows.StateUnavailable && s.Attempts >= 2
			})
			if st.Received != 0 || st.Available() || !strings.Contains(st.LastError, tt.says) {
				t.Errorf("status %+v", st)
			}
			if !strings.HasPrefix(st.Line(), "flow evidence unavailable: Goldmane at "+c.server.Address()) {
				t.Errorf("line %q", st.Line())
			}
			if n, _ := c.server.Streams(); n != 0 {
				t.Errorf("the server opened %d streams", n)
			}
		})
	}
}

// Goldmane stops and comes back: the client reconnects, resumes a little
// before the newest flow it has, and counts nothing twice.
func TestClientSurvivesAGoldmaneRestart(t *testing.T) {
	c := newCluster(t)
	times := intervals(20)
	for _, at := range times[:10] {
		c.server.Publish(goldmanetest.StagedDeny(at))
	}
	store := flows.NewStore(flows.StoreOptions{})
	client := run(t, c.server.Address(), flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key), store)
	waitFor(t, client, "the first 10 flows", received(10))

	c.server.Stop()
	down := waitFor(t, client, "the client to notice", func(s flows.Status) bool { return s.State == flows.StateUnavailable })
	for _, at := range times[10:] {
		c.server.Publish(goldmanetest.StagedDeny(at))
	}
	if err := c.server.Restart(); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, client, "the last flow", func(s flows.Status) bool { return s.LastFlowEnd.Equal(times[19].Add(flows.Interval)) })

	requests := c.server.Requests()
	if len(requests) < 2 {
		t.Fatalf("%d stream requests", len(requests))
	}
	resume := requests[len(requests)-1].GetStartTimeGte()
	if want := times[9].Unix() - 120; resume != want {
		t.Errorf("resumed at %v, want two minutes before the newest flow seen, %v", time.Unix(resume, 0), time.Unix(want, 0))
	}
	// The overlap (the newest interval and the 8 before it) came again
	// and was recognised.
	if st.Duplicates != 9 || st.Received != 29 {
		t.Errorf("received %d, %d of them again; want 29 and 9", st.Received, st.Duplicates)
	}
	var total int64
	for _, p := range store.Pending() {
		total += p.Flows
	}
	if total != 20 {
		t.Errorf("%d pending denies counted, want 20: one per interval", total)
	}
	if down.LastError == "" || !strings.Contains(down.Line(), "reconnecting") && !strings.Contains(down.Line(), "unavailable") {
		t.Errorf("while down: %q", down.Line())
	}
}

// A stream that breaks mid-way is resumed where it broke.
func TestClientResumesABrokenStream(t *testing.T) {
	c := newCluster(t)
	times := intervals(40) // ten minutes of history
	for _, at := range times {
		c.server.Publish(goldmanetest.StagedDeny(at), goldmanetest.StagedAllow(at))
	}
	c.server.BreakNextStream(30)
	store := flows.NewStore(flows.StoreOptions{})
	client := run(t, c.server.Address(), flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key), store)
	// The last interval holds two flows: wait until both arrived (80
	// distinct flows or more), then check that it is exactly those.
	st := waitFor(t, client, "every flow", func(s flows.Status) bool {
		return s.LastFlowEnd.Equal(times[39].Add(flows.Interval)) && s.Received-s.Duplicates >= 80
	})

	if st.Attempts < 2 || !strings.Contains(st.LastError, "broken on purpose") {
		t.Errorf("status %+v: want a second attempt after the break", st)
	}
	// 30 flows = 15 intervals; the second stream starts 2 minutes (8
	// intervals) before the newest of them.
	if resume := c.server.Requests()[1].GetStartTimeGte(); resume != times[14].Unix()-120 {
		t.Errorf("resumed at %v, want %v", time.Unix(resume, 0), time.Unix(times[14].Unix()-120, 0))
	}
	var total int64
	for _, p := range store.Pending() {
		total += p.Flows
	}
	if total != 40 || st.Received-st.Duplicates != 80 {
		t.Errorf("%d pending denies, %d distinct flows; want 40 and 80", total, st.Received-st.Duplicates)
	}
}

// The certificate files are read at every attempt: a renewed Secret is
// picked up at the next reconnect, and a missing file is reported.
func TestClientReadsTLSFilesAtEveryAttempt(t *testing.T) {
	c := newCluster(t)
	c.server.Publish(goldmanetest.Sample(intervals(1)[0])...)
	dir := t.TempDir()
	ca, crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	store := flows.NewStore(flows.StoreOptions{})
	client := run(t, c.server.Address(), flows.TLSFiles(ca, crt, key), store)
	st := waitFor(t, client, "a failed attempt", func(s flows.Status) bool { return s.State == flows.StateUnavailable })
	if !strings.Contains(st.LastError, "flows.tls.caFile") {
		t.Errorf("error %q does not name the field", st.LastError)
	}
	for path, data := range map[string][]byte{ca: c.ca.PEM, crt: c.client.Cert, key: c.client.Key} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, client, "the flows", received(4))
}

// A Goldmane that accepts connections and never answers: the stream is
// abandoned after StallAfter, and nothing that reads the store or the
// status waits for it.
func TestReadersDoNotWaitOnASilentGoldmane(t *testing.T) {
	c := newCluster(t)
	silent, accepted := blackHole(t)
	store := flows.NewStore(flows.StoreOptions{})
	client := run(t, silent, flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key), store, func(o *flows.ClientOptions) {
		o.StallAfter = 100 * time.Millisecond
	})
	<-accepted
	// Goldmane holds the connection (or has just been given up on); the
	// readers answer all the same.
	if st := client.Status(); st.Available() || !strings.HasPrefix(st.Line(), "flow evidence unavailable: ") {
		t.Errorf("status %+v, line %q", st, st.Line())
	}
	if len(store.Pending()) != 0 || !store.Evidence().Since.IsZero() {
		t.Error("a silent Goldmane gave evidence")
	}
	st := waitFor(t, client, "the stall to end the attempt", func(s flows.Status) bool {
		return s.State == flows.StateUnavailable && strings.Contains(s.LastError, "sent nothing for 100ms")
	})
	if st.Available() {
		t.Errorf("status %+v", st)
	}
}

// blackHole listens, accepts and never answers. The channel is closed at
// the first connection.
func blackHole(t testing.TB) (string, <-chan struct{}) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		var once sync.Once
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			once.Do(func() { close(accepted) })
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String(), accepted
}
