package goldmanetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// The stream and list semantics calico-pni relies on, as Goldmane has them
// (goldmane/pkg/goldmane/goldmane.go, v3.30): Stream's start 0 is "now"
// (no backfill), a negative start is relative to the server's clock; List
// returns the flows whose start lies in [start_time_gte, start_time_lt).
func TestServerSemantics(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Options{CA: ca, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	old, recent := StagedDeny(now.Add(-10*time.Minute)), StagedDeny(now.Add(-time.Minute))
	s.Publish(old, recent)
	flows := connect(t, ca, s.Address())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	starts := func(req *pb.FlowStreamRequest, n int) []int64 {
		stream, err := flows.Stream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for len(out) < n {
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.GetFlow().GetStartTime())
		}
		return out
	}
	if got := starts(&pb.FlowStreamRequest{StartTimeGte: -300}, 1); got[0] != recent.GetStartTime() {
		t.Errorf("the last 5 minutes sent %v first, want the recent flow", got)
	}
	// A stream from "now" sends only what is published after it opened.
	n, opened := s.Streams()
	done := make(chan []int64)
	go func() { done <- starts(&pb.FlowStreamRequest{}, 1) }()
	for n < 2 {
		<-opened
		n, opened = s.Streams()
	}
	later := StagedDeny(now)
	s.Publish(later)
	if got := <-done; got[0] != later.GetStartTime() {
		t.Errorf("a stream from now sent %v first, want the flow published after it opened", got)
	}
	list, err := flows.List(ctx, &pb.FlowListRequest{StartTimeGte: old.GetStartTime(), StartTimeLt: recent.GetStartTime()})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetFlows()) != 1 || list.GetFlows()[0].GetFlow().GetStartTime() != old.GetStartTime() || list.GetMeta().GetTotalResults() != 1 {
		t.Errorf("list %v, want the old flow only", list)
	}
	// Goldmane streams 15-second intervals only; the refusal comes with
	// the first Recv of a server stream.
	stream, err := flows.Stream(ctx, &pb.FlowStreamRequest{AggregationInterval: 60})
	if err == nil {
		_, err = stream.Recv()
	}
	if err == nil {
		t.Error("an aggregation interval of 60s was accepted")
	}
}

func connect(t *testing.T, ca *CA, address string) pb.FlowsClient {
	t.Helper()
	pair, err := ca.Client("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewFlowsClient(conn)
}
