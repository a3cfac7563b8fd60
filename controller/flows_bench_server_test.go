package controller_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/flows"
	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/metrics"
)

// BenchmarkPassWithGoldmane times the daemon's refresh passes against the
// test API server (Calico 3.30, the article fixture, one project staged)
// while Goldmane is: not configured, streaming, dead (nothing listens) or
// silent (a listener that accepts connections and never answers, so that
// the client's TLS handshake hangs). A pass reads a summary the evidence
// loop made; none of them should take longer than without flow logs.
// docs/benchmarks.md records the figures:
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test ./controller -run '^$' -bench PassWithGoldmane -benchtime 50x -count 3
func BenchmarkPassWithGoldmane(b *testing.B) {
	e := stagedEnv(b)
	g := startGoldmane(b)
	now := time.Now().Truncate(15 * time.Second)
	for i := range 500 {
		start := now.Add(-time.Duration(i%40) * 15 * time.Second)
		g.Publish(recordedFlow(start, fmt.Sprintf("shop-%d", i), "redis", 6379, pb.Reporter_Dst, pb.Action_Allow, []*pb.PolicyHit{profileHit("redis")}, stagedWallDeny()))
	}
	dead := startGoldmane(b)
	dead.Stop()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = silent.Close() })
	go holdConnections(silent)

	for _, tt := range []struct {
		name    string
		address string
	}{
		{"without flow logs", ""},
		{"Goldmane streaming", g.Address()},
		{"Goldmane dead", dead.Address()},
		{"Goldmane silent", silent.Addr().String()},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := flowsConfig(tt.address, g.tls)
			cfg.Projects.Promote.Automatic = false
			if tt.address == "" {
				cfg.Flows = config.DefaultFlows()
			}
			// The daemon's own backoff; summaries every second, so that
			// the passes read one made from the flows.
			r := start(b, e, cfg, flowEvidenceOptions(e.Kube, metrics.New(prometheus.NewRegistry()), &gateClock{}), func(o *controller.Options) {
				o.FlowBackoff, o.EvidenceRefresh, o.EvidencePoll = flows.Backoff{}, time.Second, 100*time.Millisecond
			})
			r.waitReady(b)
			testbed.Eventually(b, wait, func() error {
				st, _, err := readStatus(e, "redis")
				if err != nil {
					return err
				}
				switch p := st.Pending; {
				case p == nil:
					return fmt.Errorf("redis has no pending denies yet")
				case tt.address == g.Address() && p.Flows != "100+":
					return fmt.Errorf("redis: pending %+v, want the 500 flows' summary", p)
				case tt.address != g.Address() && p.Unavailable == "":
					return fmt.Errorf("redis: pending %+v, want unavailable", p)
				}
				return nil
			})
			var total time.Duration
			for b.Loop() {
				before := r.c.LastPassOf("refresh").Seq
				r.c.Refresh()
				total += waitPass(b, r, before).Duration
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/pass")
		})
	}
}

// waitPass waits for the refresh pass after the one numbered before.
func waitPass(b *testing.B, r *running, before uint64) (res struct{ Duration time.Duration }) {
	b.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if p := r.c.LastPassOf("refresh"); p.Seq > before {
			if p.Err != nil {
				b.Fatalf("the pass failed: %v", p.Err)
			}
			res.Duration = p.Duration
			return res
		}
		select {
		case <-deadline:
			b.Fatal("no refresh pass within a minute")
		case <-tick.C:
		}
	}
}

// holdConnections accepts connections and never answers, as a Goldmane
// that hangs.
func holdConnections(l net.Listener) {
	var held []net.Conn
	for {
		c, err := l.Accept()
		if err != nil {
			for _, c := range held {
				_ = c.Close()
			}
			return
		}
		held = append(held, c)
	}
}
