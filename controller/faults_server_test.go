package controller_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// ownEnv starts an API server of the test's own, with the article fixture.
func ownEnv(t testing.TB, opts testbed.Options) *testbed.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	e, err := testbed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	if err := e.LoadCluster(context.Background(), filepath.Join("..", "testdata", "article-cluster.yaml")); err != nil {
		t.Fatal(err)
	}
	return e
}

// 6a. The API server stops and starts again while the daemon runs: the
// daemon recovers and converges without a restart.
func TestAPIServerRestart(t *testing.T) {
	e := ownEnv(t, testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"})
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	if err := e.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	// The outage is real: the API server refuses requests, and a pass of
	// the daemon fails on it.
	if _, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server still answers after it was stopped")
	}
	if res := r.waitPass(t, "refresh", r.c.Refresh); res.Err == nil {
		t.Fatalf("a refresh during the outage succeeded: %+v", res)
	}
	if err := e.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("the API server does not answer after it started again: %v", err)
	}
	createNamespace(t, e, testbed.Namespace("after-restart", clusterID, "p-rst01"))
	testbed.Eventually(t, 2*wait, func() error { return converged(e, cfg, v128) })
	if st, _ := status(t, e, "after-restart"); st.State != policies.Isolated {
		t.Errorf("after-restart: %+v", st)
	}
}

// 6b. Calico is installed after the daemon started: it reports the
// missing API, is not ready, and becomes ready once the CRDs appear.
func TestCalicoInstalledLater(t *testing.T) {
	e := ownEnv(t, testbed.Options{})
	cfg := config.Default()
	r := start(t, e, cfg)
	testbed.Eventually(t, wait, func() error {
		if err := r.c.LastPass().Err; !errors.Is(err, cluster.ErrCalicoMissing) {
			return fmt.Errorf("last pass error %v, want ErrCalicoMissing", err)
		}
		return nil
	})
	if r.c.Ready() {
		t.Fatal("ready without Calico")
	}
	crds, err := testbed.CalicoCRDs(testbed.Options{CalicoV1: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{CRDs: crds}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCalicoVersion(context.Background(), testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"}); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
}

// 6c. The Calico API server is registered but not available: the daemon
// waits for it and writes nothing to the v1 CRDs behind its back; once the
// APIService is gone it writes v1.
func TestCalicoAPIServerUnavailable(t *testing.T) {
	e := ownEnv(t, testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"})
	ctx := context.Background()
	apiServices := e.Dynamic.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v3.projectcalico.org"},
		"spec": map[string]any{
			"group": "projectcalico.org", "version": "v3",
			"service":               map[string]any{"name": "calico-api", "namespace": "calico-apiserver", "port": int64(443)},
			"groupPriorityMinimum":  int64(1500),
			"versionPriority":       int64(200),
			"insecureSkipTLSVerify": true,
		},
	}}
	if _, err := apiServices.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	r := start(t, e, cfg)
	testbed.Eventually(t, wait, func() error {
		if err := r.c.LastPass().Err; !errors.Is(err, cluster.ErrCalicoAPIUnavailable) {
			return fmt.Errorf("last pass error %v, want ErrCalicoAPIUnavailable", err)
		}
		return nil
	})
	if r.c.Ready() || len(policyNames(t, e, v128)) != 0 || r.writes.Count() != 0 {
		t.Fatalf("while the Calico API server is unavailable: ready %v, policies %v, writes %v", r.c.Ready(), policyNames(t, e, v128), r.writes.Since(0))
	}
	if err := apiServices.Delete(ctx, "v3.projectcalico.org", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
}

// 9. v3 mode end to end: the projectcalico.org/v3 group is served, the
// daemon writes there with plain names; cleanup leaves nothing behind.
func TestV3Mode(t *testing.T) {
	e := ownEnv(t, testbed.Options{CalicoV3: true, CalicoTiers: true, CalicoVersion: "v3.30.2"})
	// The default tier, whose v3 names carry no prefix (tier mode is
	// tested in tier_test.go).
	cfg := config.Default()
	cfg.Enforcement = config.EnforcementDefaultTier
	v3 := calico.API{Group: calico.GroupV3, Version: calico.Version{Major: 3, Minor: 30}, Tiers: true}
	r := start(t, e, cfg)
	r.waitReady(t)
	if got := r.c.LastPass().API; got != v3 {
		t.Fatalf("API %+v, want %+v", got, v3)
	}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v3) })
	for _, name := range policyNames(t, e, v3) {
		if strings.HasPrefix(name, "default.") {
			t.Errorf("v3 name %s carries the v1 tier prefix", name)
		}
	}
	r.stop()
	assertCleanedUp(t, e, v3)
}

// --dry-run: the daemon computes everything and writes nothing.
func TestDryRun(t *testing.T) {
	e := fixtureEnv(t)
	r := start(t, e, config.Default(), func(o *controller.Options) { o.DryRun = true })
	r.waitReady(t)
	if n := r.writes.Count(); n != 0 {
		t.Errorf("dry run wrote: %v", r.writes.Since(0))
	}
	if len(policyNames(t, e, v128)) != 0 {
		t.Error("dry run left policies")
	}
	if logs := r.logs.String(); !strings.Contains(logs, "dry run: would write policy") || !strings.Contains(logs, "dry run: would patch namespace") {
		t.Errorf("dry run did not log its writes:\n%s", logs)
	}
}
