package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// The tests in this file run on API servers of their own with the Tier CRD
// that Calico 3.29 brought to its open-source edition (testdata/crds), and
// ClusterInformation saying the version whose naming they check: v3.30
// stands for 3.29-3.31 ("<tier>.<name>" in both APIs), v3.32 for plain
// names with spec.tier.

var (
	v130   = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 30}, Tiers: true}
	v3_332 = calico.API{Group: calico.GroupV3, Version: calico.Version{Major: 3, Minor: 32}, Tiers: true}
)

// tierEnv starts an API server with the Tier CRD and the article fixture.
func tierEnv(t *testing.T, api calico.API) *testbed.Env {
	t.Helper()
	return ownEnv(t, testbed.Options{
		CalicoV1: api.Group == calico.GroupV1, CalicoV3: api.Group == calico.GroupV3,
		CalicoTiers: true, CalicoVersion: api.Version.String() + ".1",
	})
}

// managedTier reads calico-pni's tier (nil when absent).
func managedTier(t *testing.T, e *testbed.Env, api calico.API) *unstructured.Unstructured {
	t.Helper()
	u, err := e.Dynamic.Resource(api.TierResource()).Get(context.Background(), config.TierName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

// In tier mode on Calico 3.29-3.31 (auto picks it): calico-pni's tier with
// the configured order, every policy in it under "calico-pni.<name>", and
// the namespaces' status naming the tier.
func TestTierModeNames330(t *testing.T) {
	testTierMode(t, v130, "calico-pni.pni-tier-")
}

// From Calico 3.32, plain names with spec.tier.
func TestTierModeNames332(t *testing.T) {
	testTierMode(t, v3_332, "pni-tier-")
}

func testTierMode(t *testing.T, api calico.API, prefix string) {
	e := tierEnv(t, api)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, api) })

	tier := managedTier(t, e, api)
	if tier == nil {
		t.Fatal("calico-pni's tier is missing")
	}
	spec, err := calico.TierSpecOf(tier)
	if err != nil || spec.Order == nil || *spec.Order != cfg.Tier.Order || spec.DefaultAction != calico.Deny || tier.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue {
		t.Errorf("tier %v: spec %+v (%v)", tier.Object, spec, err)
	}
	got, err := managedPolicies(e, api)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 15 {
		t.Errorf("only %d policies", len(got))
	}
	for key, u := range got {
		name := strings.TrimPrefix(key, "/")
		if !strings.HasPrefix(name, prefix) || strings.Count(name, ".") > 1 {
			t.Errorf("policy %s: want a name starting with %s and at most one dot", name, prefix)
		}
		if tier, _, _ := unstructured.NestedString(u.Object, "spec", "tier"); tier != config.TierName {
			t.Errorf("policy %s: spec.tier %q", name, tier)
		}
	}
	// What the platform guarantees is allowed, the rest passed on.
	dns := got["/"+api.StoredNameIn(config.TierName, "pni-tier-allow-dns")]
	project := got["/"+api.StoredNameIn(config.TierName, "pni-tier-project-p-b6jcw")]
	if dns == nil || project == nil {
		t.Fatalf("pni-tier-allow-dns or pni-tier-project-p-b6jcw missing among %d", len(got))
	}
	dnsSpec, _ := calico.SpecOf(dns)
	projectSpec, _ := calico.SpecOf(project)
	if dnsSpec.Egress[0].Action != calico.Allow || *dnsSpec.Order != policies.GuaranteeOrder {
		t.Errorf("DNS in the tier: %+v", dnsSpec)
	}
	if projectSpec.Ingress[0].Action != calico.Pass || projectSpec.Egress[0].Action != calico.Pass || *projectSpec.Order != policies.AllowOrder {
		t.Errorf("the project policy in the tier: %+v", projectSpec)
	}
	if st, _ := status(t, e, "shop"); st.Tier != config.TierName || !strings.Contains(strings.Join(st.Policies, " "), "pni-tier-project-p-b6jcw") {
		t.Errorf("shop's status: %+v", st)
	}
	if st, _ := status(t, e, "kube-system"); st.Tier != "" {
		t.Errorf("an exempt namespace names a tier: %+v", st)
	}

	// Cleanup removes the labels, the policies, and the tier last.
	r.stop()
	writes := cleanUp(t, e, api)
	if managedTier(t, e, api) != nil {
		t.Error("cleanup left calico-pni's tier")
	}
	assertOrder(t, writes, []string{"out"}, []string{"delete baseline@calico-pni"}, []string{"delete allow@calico-pni"}, []string{"delete tier"})
}

// Switching enforcement from the default tier to calico-pni's tier and
// back, and through an upgrade of Calico across 3.29 with auto, the
// policies appear in one tier behind a hold-open policy before they leave
// the other behind one of its own: no moment denies what both modes allow
// or allows what both deny.
func TestEnforcementSwitch(t *testing.T) {
	e := tierEnv(t, v130)
	defaultTier := config.Default()
	defaultTier.Enforcement = config.EnforcementDefaultTier
	r := start(t, e, defaultTier)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, defaultTier, v130) })

	tier := config.Default()
	tier.Enforcement = config.EnforcementTier
	m := mark(t, e)
	r.c.SetConfig(tier)
	testbed.Eventually(t, wait, func() error { return converged(e, tier, v130) })
	assertOrder(t, daemonWrites(t, e, m),
		[]string{"create tier"}, []string{"create hold@calico-pni"},
		[]string{"create allow@calico-pni"}, []string{"create baseline@calico-pni"}, []string{"delete hold@calico-pni"},
		[]string{"create hold"}, []string{"delete baseline"}, []string{"delete allow"}, []string{"delete hold"})
	if st, _ := status(t, e, "shop"); st.Tier != config.TierName {
		t.Errorf("shop's status after the switch: %+v", st)
	}

	m = mark(t, e)
	r.c.SetConfig(defaultTier)
	testbed.Eventually(t, wait, func() error {
		if managedTier(t, e, v130) != nil {
			return fmt.Errorf("calico-pni's tier is still there")
		}
		return converged(e, defaultTier, v130)
	})
	assertOrder(t, daemonWrites(t, e, m),
		[]string{"create hold"}, []string{"create allow"}, []string{"create baseline"}, []string{"delete hold"},
		[]string{"create hold@calico-pni"}, []string{"delete baseline@calico-pni"}, []string{"delete allow@calico-pni"},
		[]string{"delete hold@calico-pni"}, []string{"delete tier"})
}

// With enforcement auto, an upgrade of Calico from 3.28 to 3.29 moves the
// policies into calico-pni's tier, the same way.
func TestEnforcementFollowsCalicoUpgrade(t *testing.T) {
	e := ownEnv(t, testbed.Options{CalicoV1: true, CalicoTiers: true, CalicoVersion: "v3.28.5"})
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if managedTier(t, e, v128) != nil {
		t.Fatal("a tier on Calico 3.28")
	}

	m := mark(t, e)
	ci := e.Dynamic.Resource(v128.GroupVersion().WithResource("clusterinformations"))
	u, err := ci.Get(context.Background(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, "v3.29.3", "spec", "calicoVersion"); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The version is read again on the refresh schedule; run one now.
	r.c.Refresh()
	v129 := calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 29}, Tiers: true}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v129) })
	assertOrder(t, daemonWrites(t, e, m),
		[]string{"create tier"}, []string{"create hold@calico-pni"}, []string{"create allow@calico-pni"},
		[]string{"delete hold@calico-pni"}, []string{"create hold"}, []string{"delete allow"}, []string{"delete hold"})
}

// enforcement: tier on a Calico without tiers is refused with a message
// that names the version found, and nothing is written.
func TestTierModeRefusedBeforeCalico329(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	cfg.Enforcement = config.EnforcementTier
	r := start(t, e, cfg)
	testbed.Eventually(t, wait, func() error {
		err := r.c.LastPass().Err
		if err == nil || !strings.Contains(err.Error(), "tiers need Calico 3.29 or later") || !strings.Contains(err.Error(), "v3.28") {
			return fmt.Errorf("last pass error %v", err)
		}
		return nil
	})
	if n := r.writes.Count(); n != 0 {
		t.Errorf("writes: %v", r.writes.Since(0))
	}
}
