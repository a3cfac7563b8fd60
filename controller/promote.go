package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/promotions"
)

// loadPromotions reads the record of promoted projects: at the first
// pass of a term and at every refresh, so that a project whose key an
// admin removed is staged again within a refresh. A record that cannot
// be read fails the pass: planned without it, the pass would demote
// every promoted project.
func (c *Controller) loadPromotions(ctx context.Context, refresh bool) error {
	if c.o.Promotions == nil {
		return nil
	}
	c.promoteMu.Lock()
	defer c.promoteMu.Unlock()
	if c.promoted != nil && !refresh {
		return nil
	}
	ps, err := c.o.Promotions.Load(ctx)
	if err != nil {
		c.o.Metrics.Errors.WithLabelValues("list").Inc()
		return err
	}
	c.promoted = ps
	return nil
}

// promotedReasons is the promoted set the generator reads.
func (c *Controller) promotedReasons() map[string]string {
	c.promoteMu.Lock()
	defer c.promoteMu.Unlock()
	return promotions.Reasons(c.promoted)
}

// Promoted returns the promotions in force, by project.
func (c *Controller) Promoted() map[string]promotions.Promotion {
	c.promoteMu.Lock()
	defer c.promoteMu.Unlock()
	return maps.Clone(c.promoted)
}

// promoteQuiet enforces the staged projects the gate lets through: it
// records them (the record outlives the evidence, which lives in
// memory), then starts a pass, which moves them from staged to enforced
// like any promotion: enforced policies first, then the namespaces, then
// the staged policies go. Each namespace's Promoted event carries the
// record's sentence.
func (c *Controller) promoteQuiet(ctx context.Context, gate []flows.Readiness, st flows.Status) {
	if c.o.Promotions == nil {
		if !c.loop.warnedNoRecord {
			c.loop.warnedNoRecord = true
			c.log.Warn("projects.promote.automatic is set but the daemon has no record of promotions (--promotions-configmap): the gate only reports")
		}
		return
	}
	cfg := c.cfg.Load()
	c.promoteMu.Lock()
	defer c.promoteMu.Unlock()
	if c.promoted == nil {
		// No pass of this term has read the record yet.
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	var ps []promotions.Promotion
	for _, r := range gate {
		if _, done := c.promoted[r.Project]; done || !r.Ready {
			continue
		}
		ps = append(ps, promotions.Promotion{
			Project: r.Project, At: now, QuietSince: r.QuietSince.UTC(), QuietFor: cfg.Projects.Promote.QuietFor.String(),
			Accepted: r.Accepted, Evidence: st.Line(),
		})
	}
	if len(ps) == 0 {
		return
	}
	if err := c.o.Promotions.Add(ctx, ps...); err != nil {
		c.o.Metrics.Errors.WithLabelValues("write").Inc()
		c.log.Error("promoting quiet staged projects failed; the gate tries again at the next refresh", "error", err)
		return
	}
	next := maps.Clone(c.promoted)
	c.loop.mu.Lock()
	for _, p := range ps {
		// Staged again later (its key removed), it starts a new quiet time.
		delete(c.loop.stagedSince, p.Project)
	}
	c.loop.mu.Unlock()
	for _, p := range ps {
		next[p.Project] = p
		c.log.Info("promoting a staged project: the flow logs show no unexpected pending deny", "project", p.Project,
			"quietFor", promotions.Quiet(p.At.Sub(p.QuietSince)), "quietSince", p.QuietSince, "acceptedDenies", p.Accepted, "record", c.o.Promotions.String())
		c.eventOnSelf(corev1.EventTypeNormal, "ProjectPromoted", fmt.Sprintf("project %s: %s", p.Project, p.Reason()))
	}
	c.promoted = next
	c.enqueue(passKey)
}
