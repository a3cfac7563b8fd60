package policies

import (
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

// A staged project the promotion gate enforced is enforced, with the
// gate's sentence in its namespaces' reason; the other staged projects
// stay staged, and rollout: stage enforces nothing, promoted or not.
func TestPromotedProjects(t *testing.T) {
	snap := baseSnapshot(rancherNS("shop", "p-shop1"), rancherNS("cart", "p-shop1"), rancherNS("report", "p-data1"), rancherNS("loose", ""))
	snap.CalicoVersion = calico.Version{Major: 3, Minor: 30}
	snap.Promoted = map[string]string{"p-shop1": "promoted at 2026-03-09T10:00:00Z after 7d without an unexpected pending deny"}

	cfg := config.Default()
	cfg.Projects = config.Projects{Enforce: []string{}, Stage: []string{"*"}, Promote: config.DefaultPromote()}
	d := Generate(snap, cfg)
	for _, name := range []string{"shop", "cart"} {
		st := nsState(t, d, name)
		if st.Status.State != Isolated || st.Labels[IsolatedLabel] != "true" || st.Labels[StagedLabel] != "" {
			t.Errorf("%s: %+v %v; want isolated: its project was promoted", name, st.Status, st.Labels)
		}
		if !strings.Contains(st.Status.Reason, "promoted at 2026-03-09T10:00:00Z") {
			t.Errorf("%s: reason %q does not say it was promoted", name, st.Status.Reason)
		}
	}
	if st := nsState(t, d, "report"); st.Status.State != Staged || st.Labels[StagedLabel] != "true" {
		t.Errorf("report: %+v %v; want staged", st.Status, st.Labels)
	}
	if st := nsState(t, d, "loose"); st.Status.State != Open {
		t.Errorf("loose: %+v", st.Status)
	}
	// The enforced project policy exists for the promoted project, the
	// staged one for the other.
	policyByName(t, d, TierNamePrefix+"project-p-shop1")
	policyByName(t, d, TierNamePrefix+"staged-project-p-data1")

	// Without the record, the same configuration stages both.
	plain := snap
	plain.Promoted = nil
	if st := nsState(t, Generate(plain, cfg), "shop"); st.Status.State != Staged {
		t.Errorf("shop without promotion: %+v", st.Status)
	}
	// rollout: stage enforces nothing.
	stage := config.Default()
	stage.Rollout = config.RolloutStage
	if st := nsState(t, Generate(snap, stage), "shop"); st.Status.State != Staged {
		t.Errorf("shop under rollout: stage: %+v; want staged although promoted", st.Status)
	}
	// A project the configuration leaves open stays open.
	open := config.Default()
	open.Projects = config.Projects{Enforce: []string{}, Stage: []string{"p-data1"}, Promote: config.DefaultPromote()}
	if st := nsState(t, Generate(snap, open), "shop"); st.Status.State != Open {
		t.Errorf("shop in a project neither list names: %+v; want open although promoted", st.Status)
	}
}
