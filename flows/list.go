package flows

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// dial opens a connection to Goldmane with mutual TLS. It does not wait
// for the connection: the first call does.
func dial(address, serverName string, source TLSSource) (*grpc.ClientConn, error) {
	cfg, err := source()
	if err != nil {
		return nil, err
	}
	if serverName != "" {
		cfg.ServerName = serverName
	}
	conn, err := grpc.NewClient(address,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		// Pings find a connection whose peer vanished without closing it;
		// gRPC servers refuse pings more often than every 5 minutes.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Minute, Timeout: 20 * time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("Goldmane at %s: %w", address, err)
	}
	return conn, nil
}

// listPageSize is how many flows one page of Flows.List asks for.
const listPageSize = 1000

// List reads, once, the flows Goldmane holds that started within window
// before its now (Flows.List, page by page), for commands that look at
// the flows once rather than follow them: `matrix --observed`.
func List(ctx context.Context, address, serverName string, source TLSSource, window time.Duration) ([]Flow, error) {
	conn, err := dial(address, serverName, source)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	client := pb.NewFlowsClient(conn)
	var out []Flow
	for page := int64(0); ; page++ {
		res, err := client.List(ctx, &pb.FlowListRequest{
			StartTimeGte: -int64(window / time.Second), Page: page, PageSize: listPageSize,
			AggregationInterval: int64(Interval / time.Second),
		})
		if err != nil {
			return nil, fmt.Errorf("listing the flows of Goldmane at %s: %w", address, err)
		}
		for _, r := range res.GetFlows() {
			out = append(out, FromProto(r.GetFlow()))
		}
		if page+1 >= res.GetMeta().GetTotalPages() || len(res.GetFlows()) == 0 {
			return out, nil
		}
	}
}
