package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// The tests in this file run on API servers of their own with the staged
// policy CRD (testdata/crds, standing for Calico 3.30, the first release
// whose open-source edition has staged policies) and ClusterInformation
// saying v3.30: policies go to calico-pni's tier (auto), named
// "calico-pni.<name>".

var v130staged = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 30}, Tiers: true, Staged: true}

func stagedEnv(t testing.TB) *testbed.Env {
	t.Helper()
	return ownEnv(t, testbed.Options{CalicoV1: true, CalicoStaged: true, CalicoVersion: "v3.30.1"})
}

// kinds counts the managed policies by kind.
func kinds(t *testing.T, e *testbed.Env, api calico.API) map[string]int {
	t.Helper()
	got, err := managedPolicies(e, api)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, u := range got {
		out[u.GetKind()]++
	}
	return out
}

// rollout: stage writes staged policies only, labels the namespaces it
// would isolate as staged, and enforces nothing; cleanup removes them.
func TestStageModeWritesStagedOnly(t *testing.T) {
	e := stagedEnv(t)
	cfg := config.Default()
	cfg.Rollout = config.RolloutStage
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v130staged) })

	if got := kinds(t, e, v130staged); got["GlobalNetworkPolicy"] != 0 || got["StagedGlobalNetworkPolicy"] < 10 {
		t.Errorf("managed policies by kind: %v; want staged ones only", got)
	}
	objects, _ := managedPolicies(e, v130staged)
	for key, u := range objects {
		spec, err := calico.SpecOf(u)
		if err != nil || spec.StagedAction != calico.StagedSet || spec.Tier != config.TierName || !strings.HasPrefix(key, "/calico-pni.pni-tier-staged-") {
			t.Errorf("%s: %+v (%v)", key, spec, err)
		}
		if !strings.Contains(spec.NamespaceSelector, policies.StagedLabel) {
			t.Errorf("%s selects %q, not by the staged label", key, spec.NamespaceSelector)
		}
	}
	st, labels := status(t, e, "shop")
	if st.State != policies.Staged || st.Isolated || labels[policies.StagedLabel] != "true" || labels[policies.IsolatedLabel] != "" || labels[policies.ProjectLabel] != "p-b6jcw" {
		t.Errorf("shop: %+v %v", st, labels)
	}
	if !strings.Contains(strings.Join(st.Policies, " "), "pni-tier-staged-project-p-b6jcw") || !strings.Contains(st.Reason, "rollout: stage") {
		t.Errorf("shop's status does not name its staged policies and why: %+v", st)
	}
	r.stop()
	writes := cleanUp(t, e, v130staged)
	assertOrder(t, writes, []string{"out", "status"}, []string{"delete staged"})
}

// Some projects enforced, others staged, at the same time.
func TestProjectByProject(t *testing.T) {
	e := stagedEnv(t)
	cfg := config.Default()
	cfg.Projects = config.Projects{Enforce: []string{"p-b6jcw"}, Stage: []string{"p-mcb29"}}
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v130staged) })

	for _, tt := range []struct {
		ns    string
		state policies.State
		label string
	}{
		{"shop", policies.Isolated, policies.IsolatedLabel},
		{"redis", policies.Staged, policies.StagedLabel},
		// In no project, isolated on its own: follows rollout (enforce).
		{"squatter", policies.Error, policies.IsolatedLabel},
	} {
		st, labels := status(t, e, tt.ns)
		if st.State != tt.state || labels[tt.label] != "true" {
			t.Errorf("%s: %+v %v; want %s with %s", tt.ns, st, labels, tt.state, tt.label)
		}
	}
	got := kinds(t, e, v130staged)
	if got["GlobalNetworkPolicy"] < 10 || got["StagedGlobalNetworkPolicy"] < 5 {
		t.Errorf("managed policies by kind: %v; want both", got)
	}

	// A project that neither list names is left open, and says so.
	cfg2 := config.Default()
	cfg2.Projects = config.Projects{Enforce: []string{"p-b6jcw"}, Stage: []string{}}
	r.c.SetConfig(cfg2)
	testbed.Eventually(t, wait, func() error {
		if err := converged(e, cfg2, v130staged); err != nil {
			return err
		}
		st, _, err := readStatus(e, "redis")
		if err != nil {
			return err
		}
		if st.State != policies.Open || !strings.Contains(st.Reason, "neither projects.enforce nor projects.stage") {
			return fmt.Errorf("redis: %+v", st)
		}
		return nil
	})
}

// Promotion from staged to enforced writes the enforced policies before
// the namespaces change and removes the staged ones after; demotion the
// other way round. Events record both.
func TestPromotionAndDemotion(t *testing.T) {
	e := stagedEnv(t)
	staged := config.Default()
	staged.Projects = config.Projects{Enforce: []string{"p-b6jcw"}, Stage: []string{"p-mcb29"}}
	r := start(t, e, staged)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, staged, v130staged) })

	enforced := config.Default()
	m := mark(t, e)
	r.c.SetConfig(enforced)
	testbed.Eventually(t, wait, func() error { return converged(e, enforced, v130staged) })
	assertOrder(t, daemonWrites(t, e, m), []string{"create allow@calico-pni"}, []string{"in"}, []string{"delete staged"})
	testbed.Eventually(t, wait, func() error { return namespaceEvent(e, "redis", "Promoted") })

	m = mark(t, e)
	r.c.SetConfig(staged)
	testbed.Eventually(t, wait, func() error { return converged(e, staged, v130staged) })
	assertOrder(t, daemonWrites(t, e, m), []string{"create staged"}, []string{"out"}, []string{"delete allow@calico-pni"})
	testbed.Eventually(t, wait, func() error { return namespaceEvent(e, "redis", "Demoted") })
}

// Staging on a Calico without staged policies is refused with a message
// that names the version found, and nothing is written.
func TestStageRefusedOnCalico329(t *testing.T) {
	e := ownEnv(t, testbed.Options{CalicoV1: true, CalicoTiers: true, CalicoVersion: "v3.29.4"})
	cfg := config.Default()
	cfg.Rollout = config.RolloutStage
	r := start(t, e, cfg)
	testbed.Eventually(t, wait, func() error {
		err := r.c.LastPass().Err
		if err == nil || !strings.Contains(err.Error(), "Calico 3.30 and later") || !strings.Contains(err.Error(), "v3.29") {
			return fmt.Errorf("last pass error %v", err)
		}
		return nil
	})
	if n := r.writes.Count(); n != 0 {
		t.Errorf("writes: %v", r.writes.Since(0))
	}
}

// namespaceEvent reports whether an event with the reason was recorded on
// a namespace (events about namespaces land in default).
func namespaceEvent(e *testbed.Env, namespace, reason string) error {
	events, err := e.Kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + namespace})
	if err != nil {
		return err
	}
	for _, ev := range events.Items {
		if ev.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("no %s event on namespace %s yet (%d events)", reason, namespace, len(events.Items))
}
