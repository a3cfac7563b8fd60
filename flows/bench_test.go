package flows_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/flows/goldmanepb"
	"github.com/calico-pni/calico-pni/flows/goldmanetest"
)

// Readers of the evidence while Goldmane is dead (nothing listens) or
// silent (it accepts connections and never answers): each query takes
// microseconds, because none of them touches the network. The store holds
// a day of pending denies: 1,000 keys (100 namespaces × 10 peers).
//
//	go test -run '^$' -bench Readers -benchmem ./flows/
func BenchmarkReadersWhileGoldmaneIsDown(b *testing.B) {
	c := newCluster(b)
	dead := deadAddress(b)
	silent, _ := blackHole(b)
	for _, down := range []struct{ name, address string }{{"dead", dead}, {"silent", silent}} {
		store := filledStore(b)
		client := run(b, down.address, flows.TLSPEM(c.ca.PEM, c.client.Cert, c.client.Key), store)
		// As the daemon will: a lookup in the namespaces it knows.
		known := map[string]string{}
		for i := range 100 {
			known[fmt.Sprintf("ns%d", i)] = fmt.Sprintf("p-%d", i%10)
		}
		of := func(ns string) string { return known[ns] }
		staged := []flows.StagedProject{{Project: "p-1"}, {Project: "p-2"}}
		promote := config.DefaultPromote()

		b.Run(down.name+"/Pending", func(b *testing.B) {
			for b.Loop() {
				_ = store.Pending()
			}
		})
		b.Run(down.name+"/Summarize", func(b *testing.B) {
			for b.Loop() {
				_ = flows.Summarize(store.Pending(), of, 5)
			}
		})
		b.Run(down.name+"/Gate", func(b *testing.B) {
			for b.Loop() {
				_ = flows.Gate(time.Now(), promote, staged, store.Evidence(), of)
			}
		})
		b.Run(down.name+"/StatusLine", func(b *testing.B) {
			for b.Loop() {
				_ = client.Status().Line()
			}
		})
	}
}

// BenchmarkStoreAdd is the cost of one flow arriving.
func BenchmarkStoreAdd(b *testing.B) {
	store := flows.NewStore(flows.StoreOptions{})
	start := time.Now().Add(-time.Hour).Truncate(flows.Interval)
	// An hour of a busy cluster: 1,000 flows every interval.
	var arriving []flows.Flow
	for i := range 240_000 {
		p := goldmanetest.StagedDeny(start.Add(time.Duration(i/1000) * flows.Interval))
		p.Key.DestNamespace = fmt.Sprintf("ns%d", i%100)
		p.Key.SourceNamespace = fmt.Sprintf("peer%d", i%1000/100)
		arriving = append(arriving, flows.FromProto(p))
	}
	i := 0
	for b.Loop() {
		store.Add(arriving[i%len(arriving)])
		i++
	}
}

func filledStore(b *testing.B) *flows.Store {
	store := flows.NewStore(flows.StoreOptions{})
	start := time.Now().Add(-23 * time.Hour).Truncate(flows.Interval)
	for i := range 20_000 {
		at := start.Add(time.Duration(i/20) * flows.Interval)
		var p *goldmanepb.Flow = goldmanetest.StagedDeny(at)
		p.Key.DestNamespace = fmt.Sprintf("ns%d", i%100)
		p.Key.SourceNamespace = fmt.Sprintf("peer%d", i/100%10)
		store.Add(flows.FromProto(p))
	}
	if n := len(store.Pending()); n != 1000 {
		b.Fatalf("%d keys, want 1000", n)
	}
	return store
}

// deadAddress is a loopback port nothing listens on.
func deadAddress(b *testing.B) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}
