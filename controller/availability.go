package controller

import (
	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/flows"
	corev1 "k8s.io/api/core/v1"
)

// Whether there is flow evidence now, and why not: logs, events, the
// metric, and the sentence the staged namespaces' status shows.

// noteAvailability logs, counts and records an event when the evidence
// becomes available or unavailable.
func (c *Controller) noteAvailability(st flows.Status) {
	l := &c.loop
	now := st.Available()
	if now {
		c.o.Metrics.FlowEvidenceAvailable.Set(1)
	} else {
		c.o.Metrics.FlowEvidenceAvailable.Set(0)
	}
	if l.available != nil && *l.available == now {
		return
	}
	first := l.available == nil
	l.available = &now
	line := c.evidenceLine(st)
	switch {
	case now:
		c.log.Info("flow evidence available", "status", line)
		c.eventOnSelf(corev1.EventTypeNormal, "FlowEvidenceAvailable", line)
	case first:
		// Starting up: not yet available is no news.
		c.log.Info("flow evidence not available yet", "status", line)
	default:
		c.log.Warn("flow evidence unavailable: staged projects' quiet time starts again when flows come back", "status", line)
		c.eventOnSelf(corev1.EventTypeWarning, "FlowEvidenceUnavailable", line)
	}
}

// evidenceLine is the evidence's status line, with the reason a Calico
// older than 3.30 gives.
func (c *Controller) evidenceLine(st flows.Status) string {
	line := st.Line()
	if v, ok := c.calicoVersion.Load().(calico.Version); ok && v != (calico.Version{}) && !v.AtLeast(3, 30) && !st.Available() {
		line += " (Calico " + v.String() + " has no Goldmane: flow logs need Calico 3.30 or later)"
	}
	return line
}

func (c *Controller) eventOnSelf(kind, reason, message string) {
	if c.o.Recorder != nil && c.o.Self != nil {
		c.o.Recorder.Event(c.o.Self, kind, reason, message)
	}
}

// unavailableReason says why there is no flow evidence, in words that
// stay the same while the reason does (no times), for the statuses.
func (c *Controller) unavailableReason(st flows.Status) string {
	var why string
	switch {
	case st.State == flows.StateOff:
		why = "the flow-log client is not running"
	case st.LastError != "" && st.State != flows.StateStreaming && st.State != flows.StateConnected:
		why = "no flow logs from Goldmane at " + st.Address + ": " + st.LastError
	case st.State == flows.StateStreaming:
		why = "Goldmane at " + st.Address + " sent no flow for longer than flows.maxGap"
	default:
		why = "connected to Goldmane at " + st.Address + ", no flow received yet"
	}
	if v, ok := c.calicoVersion.Load().(calico.Version); ok && v != (calico.Version{}) && !v.AtLeast(3, 30) {
		why += " (Calico " + v.String() + " has no Goldmane: flow logs need Calico 3.30 or later)"
	}
	return "flow evidence unavailable: " + why
}

// notReadReason is what a staged namespace's status says while flow logs
// are not read.
const notReadReason = "flow evidence unavailable: calico-pni does not read Calico's flow logs (flows.enabled: false; docs/rollout.md)"
