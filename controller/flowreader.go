package controller

import (
	"context"
	"reflect"
	"sync"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/flows"
)

// flowReader runs the flow-log client the configuration's flows section
// asks for: one at a time, replaced when the section changes.
type flowReader struct {
	mu sync.Mutex
	// ctx is Start's; nil before Start.
	ctx     context.Context
	running *config.Flows
	cancel  context.CancelFunc
}

// readFlows starts, replaces or stops the flow-log client to match cfg.
// The client runs on a goroutine of its own and only fills its Store:
// passes read a summary of it and never wait for Goldmane. An
// Options.Evidence given by the caller stays in force instead.
func (c *Controller) readFlows(cfg *config.Config) {
	if c.o.Evidence != nil {
		return
	}
	r := &c.reader
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return
	}
	want := cfg.Flows
	if !want.Enabled {
		want = config.Flows{}
	}
	if r.running != nil && reflect.DeepEqual(*r.running, want) {
		return
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.running = &want
	if !want.Enabled {
		c.SetEvidence(nil)
		return
	}
	store := flows.NewStore(flows.StoreOptionsFromConfig(want))
	opts := flows.OptionsFromConfig(want, store)
	opts.Log = c.log
	if c.o.FlowBackoff != (flows.Backoff{}) {
		opts.Backoff = c.o.FlowBackoff
	}
	client, err := flows.NewClient(opts)
	if err != nil {
		// Validation of the flows section makes this unreachable.
		c.log.Error("flow logs are not read", "error", err)
		c.SetEvidence(nil)
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancel = cancel
	go client.Run(ctx)
	c.log.Info("reading Calico's flow logs", "address", want.Address, "window", want.Window.String())
	c.SetEvidence(&Evidence{Client: client, Store: store})
}

// startReadingFlows lets readFlows run clients under ctx, and starts the
// one the configuration in force asks for.
func (c *Controller) startReadingFlows(ctx context.Context) {
	c.reader.mu.Lock()
	c.reader.ctx = ctx
	c.reader.mu.Unlock()
	c.readFlows(c.cfg.Load())
}
