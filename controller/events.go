package controller

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"
)

// reportProblems logs cluster-wide findings when they change.
func (c *Controller) reportProblems(problems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Equal(problems, c.problems) {
		return
	}
	c.problems = slices.Clone(problems)
	for _, p := range problems {
		c.log.Warn("cluster problem", "problem", p)
		if c.o.Recorder != nil && c.o.Self != nil {
			c.o.Recorder.Event(c.o.Self, corev1.EventTypeWarning, "ClusterProblem", p)
		}
	}
}

// reportRancher says when the cluster starts or stops running Rancher's
// own project network isolation beside calico-pni.
func (c *Controller) reportRancher(namespaces int) {
	c.o.Metrics.RancherIsolation.Set(float64(namespaces))
	c.mu.Lock()
	was := c.rancherNamespaces
	c.rancherNamespaces = namespaces
	c.mu.Unlock()
	switch {
	case namespaces > 0 && was == 0:
		msg := fmt.Sprintf("Rancher's own project network isolation also applies in %d namespaces (its NetworkPolicies labelled cattle.io/creator: norman); calico-pni keeps a copy of them until Rancher's isolation is switched off: docs/migrate-from-rancher.md", namespaces)
		c.log.Warn(msg)
		if c.o.Recorder != nil && c.o.Self != nil {
			c.o.Recorder.Event(c.o.Self, corev1.EventTypeNormal, "RancherIsolation", msg)
		}
	case namespaces == 0 && was > 0:
		c.log.Info("Rancher's own project network isolation is gone: calico-pni alone isolates the projects")
	}
}

// recordNamespaceEvent records events on a namespace: when its state or
// project changes, when it has new problems, and when calico-pni puts back
// labels someone else changed. The first status a namespace ever gets is
// not announced during the first pass after taking the lead, so that
// installing calico-pni on a large cluster does not flood events; problems
// are always announced.
func (c *Controller) recordNamespaceEvent(ch plan.NamespaceWrite, firstPass bool) {
	if c.o.Recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: ch.Name}
	if len(ch.Restored) > 0 {
		c.o.Recorder.Eventf(ref, corev1.EventTypeWarning, "LabelsRestored",
			"calico-pni labels %v were changed by someone other than calico-pni and have been put back; only calico-pni may set them", ch.Restored)
	}
	var from policies.Status
	if ch.From != nil {
		from = *ch.From
	}
	to := ch.To
	for _, p := range to.Problems {
		if !slices.Contains(from.Problems, p) {
			c.o.Recorder.Event(ref, corev1.EventTypeWarning, "PolicyProblem", p)
		}
	}
	for _, e := range to.Exposures {
		if !slices.Contains(from.Exposures, e) {
			who := e.Kind + " " + e.Name
			if e.Namespace != "" {
				who = e.Kind + " " + e.Namespace + "/" + e.Name
			}
			c.o.Recorder.Eventf(ref, corev1.EventTypeNormal, "Exposed", "%s, not written by calico-pni, opens the wall (%s): %s", who, e.Direction, e.Opens)
		}
	}
	if ch.From == nil && firstPass {
		return
	}
	if from.State == to.State && from.Project == to.Project && from.Isolated == to.Isolated {
		return
	}
	was := "no status"
	if ch.From != nil {
		was = describe(from)
	}
	reason := map[policies.State]string{policies.Isolated: "Isolated", policies.Exempt: "Exempt", policies.Open: "Open", policies.Staged: "Staged", policies.Error: "PolicyProblem"}[to.State]
	// Moves between staged and enforced are the steps of a rollout.
	switch {
	case from.State == policies.Staged && to.State == policies.Isolated:
		reason = "Promoted"
	case from.State == policies.Isolated && to.State == policies.Staged:
		reason = "Demoted"
	}
	c.o.Recorder.Eventf(ref, corev1.EventTypeNormal, reason, "calico-pni: %s (was %s): %s", describe(to), was, to.Reason)
}

func describe(s policies.Status) string {
	text := string(s.State)
	if s.Project != "" {
		text += " in project " + s.Project
	}
	return text
}
