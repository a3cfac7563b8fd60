package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// A policy that becomes invalid stays on the server as it was, neither
// updated nor deleted; the namespaces that need it are held as they are,
// with the reason in their status. Here shop's NodePort Service gets a
// selector so long that the rule letting outside traffic reach its pods
// makes pni-allow-external-services longer than Calico accepts.
func TestInvalidPolicyStaysAsItWas(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	gnp := e.Dynamic.Resource(v128.Resource("GlobalNetworkPolicy"))
	before, err := gnp.Get(ctx, v128.StoredName("pni-allow-external-services"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	huge := map[string]string{"app": "web"}
	for i := range 12 {
		huge[fmt.Sprintf("example.com/selector-key-%02d", i)] = strings.Repeat("v", 60)
	}
	setSelector(t, e, "shop", "web", huge)
	t.Cleanup(func() { setSelector(t, e, "shop", "web", map[string]string{"app": "web"}) })

	testbed.Eventually(t, wait, func() error {
		st, labels, err := readStatus(e, "shop")
		if err != nil {
			return err
		}
		if st.State != policies.Error || !strings.Contains(strings.Join(st.Problems, "\n"), "pni-allow-external-services is invalid") {
			return fmt.Errorf("shop's status does not report the invalid policy: %+v", st)
		}
		if labels[policies.IsolatedLabel] != "true" || labels[policies.ProjectLabel] != "p-b6jcw" {
			return fmt.Errorf("shop was not held as it was: %v", labels)
		}
		return nil
	})
	// A pass that began after the status was written has run as well: the
	// live copy is still the very object it was.
	r.waitPass(t, "refresh", r.c.Refresh)
	after, err := gnp.Get(ctx, v128.StoredName("pni-allow-external-services"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the live copy of the invalid policy is gone: %v", err)
	}
	if after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("the live copy of the invalid policy changed: resourceVersion %s, was %s", after.GetResourceVersion(), before.GetResourceVersion())
	}
	if got := r.c.LastPass(); got.Err != nil {
		t.Errorf("an invalid policy is reported on the namespaces, not as a failed pass: %v", got.Err)
	}
}

func setSelector(t *testing.T, e *testbed.Env, namespace, name string, selector map[string]string) {
	t.Helper()
	svc, err := e.Kube.CoreV1().Services(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Selector = selector
	if _, err := e.Kube.CoreV1().Services(namespace).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
