// Package goldmanetest serves Calico Goldmane's flow API in process, over
// mutual TLS, for tests of code that reads flow logs. It implements the
// Flows service of calico-pni's definition of Goldmane's API
// (flows/goldmanepb), with Goldmane's semantics where calico-pni relies on
// them (goldmane/pkg/goldmane and pkg/server in projectcalico/calico,
// v3.30): Stream first sends the flows it holds from start_time_gte on (0:
// none, a negative value: relative to its clock), then new ones as they
// are published; List returns the flows of a time range. It refuses
// clients without a certificate its CA signed, as Goldmane does. It can be
// stopped and started again on the same address, and made to break a
// stream after a number of flows.
package goldmanetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// Server is a Goldmane serving recorded flows.
type Server struct {
	pb.UnimplementedFlowsServer

	ca      *CA
	tls     *tls.Config
	now     func() time.Time
	address string

	mu         sync.Mutex
	flows      []*pb.Flow
	published  chan struct{} // closed and replaced at each Publish
	requests   []*pb.FlowStreamRequest
	breakAfter int
	grpc       *grpc.Server
	streams    int
	opened     chan struct{} // closed and replaced at each stream opened
}

// Options configure a Server.
type Options struct {
	// CA signs the server's certificate and is the only CA whose client
	// certificates it accepts.
	CA *CA
	// Address to listen on (default "127.0.0.1:0": a free port).
	Address string
	// Now is the server's clock, for relative start times (default
	// time.Now).
	Now func() time.Time
}

// Start serves on a new listener.
func Start(opts Options) (*Server, error) {
	if opts.CA == nil {
		return nil, errors.New("goldmanetest: a CA is needed: the server serves mutual TLS only")
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pair, err := opts.CA.Server([]string{"goldmane.calico-system.svc", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		return nil, err
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(opts.CA.PEM)
	s := &Server{
		ca:  opts.CA,
		now: opts.Now,
		tls: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clients,
			MinVersion:   tls.VersionTLS12,
		},
		published: make(chan struct{}),
		opened:    make(chan struct{}),
	}
	s.address = opts.Address
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	lis, err := net.Listen("tcp", s.address)
	if err != nil {
		return fmt.Errorf("goldmanetest: listening on %s: %w", s.address, err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(s.tls)))
	pb.RegisterFlowsServer(srv, s)
	s.mu.Lock()
	s.address = lis.Addr().String()
	s.grpc = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// Address is where the server listens.
func (s *Server) Address() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.address
}

// Stop ends every stream and connection at once and stops listening, as a
// Goldmane pod that is killed.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart starts serving again on the same address, with the flows it
// held: Felix sends a restarted Goldmane its flows again.
func (s *Server) Restart() error {
	s.Stop()
	return s.listen()
}

// Publish adds flows: streams send them at once.
func (s *Server) Publish(flows ...*pb.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flows = append(s.flows, flows...)
	close(s.published)
	s.published = make(chan struct{})
}

// BreakNextStream makes the next stream that opens fail with Unavailable
// after sending n flows, as a stream cut by a network fault.
func (s *Server) BreakNextStream(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.breakAfter = n
}

// Requests returns the stream requests received so far.
func (s *Server) Requests() []*pb.FlowStreamRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pb.FlowStreamRequest(nil), s.requests...)
}

// Streams returns how many streams were opened, and a channel closed
// when the next one opens.
func (s *Server) Streams() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams, s.opened
}

// Stream serves Flows.Stream.
func (s *Server) Stream(req *pb.FlowStreamRequest, stream grpc.ServerStreamingServer[pb.FlowResult]) error {
	if req.GetAggregationInterval() != 0 && req.GetAggregationInterval() != 15 {
		return status.Errorf(codes.InvalidArgument, "aggregation interval must be 15 seconds, not %d", req.GetAggregationInterval())
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.streams++
	close(s.opened)
	s.opened = make(chan struct{})
	from := req.GetStartTimeGte()
	next := 0
	switch {
	case from == 0:
		next = len(s.flows) // "now": no backfill
	case from < 0:
		from = s.now().Unix() + from
	}
	limit := s.breakAfter
	s.breakAfter = 0
	s.mu.Unlock()

	sent := 0
	for {
		batch, wait := s.after(next)
		next += len(batch)
		for _, f := range batch {
			if f.GetStartTime() < from {
				continue
			}
			if limit > 0 && sent == limit {
				return status.Error(codes.Unavailable, "goldmanetest: stream broken on purpose")
			}
			if err := stream.Send(&pb.FlowResult{Id: int64(next), Flow: f}); err != nil {
				return err
			}
			sent++
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-wait:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// after returns the flows published after the first n, and a channel
// closed at the next Publish.
func (s *Server) after(n int) ([]*pb.Flow, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flows[n:len(s.flows):len(s.flows)], s.published
}

// List serves Flows.List: the flows whose start lies in the range, in
// the order they were published.
func (s *Server) List(_ context.Context, req *pb.FlowListRequest) (*pb.FlowListResult, error) {
	now := s.now().Unix()
	from, to := req.GetStartTimeGte(), req.GetStartTimeLt()
	if from < 0 {
		from += now
	}
	switch {
	case to == 0:
		to = now + 1
	case to < 0:
		to += now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &pb.FlowListResult{Meta: &pb.ListMetadata{}}
	for i, f := range s.flows {
		if f.GetStartTime() >= from && f.GetStartTime() < to {
			out.Flows = append(out.Flows, &pb.FlowResult{Id: int64(i + 1), Flow: f})
		}
	}
	out.Meta.TotalResults = int64(len(out.Flows))
	out.Meta.TotalPages = 1
	return out, nil
}
