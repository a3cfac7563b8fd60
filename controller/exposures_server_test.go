package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// A tenant's NetworkPolicy that lets every namespace into shop opens its
// wall in default-tier mode: shop's status names the policy and what it
// opens, an event says so, and it goes when the policy goes. shop stays
// isolated.
func TestExposuresInTheStatus(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	if st, _ := status(t, e, "shop"); len(st.Exposures) != 0 {
		t.Fatalf("shop is exposed before any policy of a tenant: %+v", st.Exposures)
	}

	createOpenPolicy(t, e, "shop")
	testbed.Eventually(t, wait, func() error {
		st, _, err := readStatus(e, "shop")
		if err != nil {
			return err
		}
		if st.State != policies.Isolated || len(st.Exposures) != 1 {
			return fmt.Errorf("shop: %+v", st)
		}
		x := st.Exposures[0]
		if x.Kind != "NetworkPolicy" || x.Namespace != "shop" || x.Name != "from-everywhere" || x.Direction != "ingress" ||
			!strings.Contains(x.Opens, "namespaces of other projects (p-mcb29)") {
			return fmt.Errorf("shop's exposure: %+v", x)
		}
		return namespaceEvent(e, "shop", "Exposed")
	})
	if st, _ := status(t, e, "shop-batch"); len(st.Exposures) != 0 {
		t.Errorf("a namespace the policy does not select is exposed: %+v", st.Exposures)
	}
	if err := e.Kube.NetworkingV1().NetworkPolicies("shop").Delete(ctx, "from-everywhere", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
}

// In tier mode the same policy comes after the wall: no exposure.
func TestNoExposureBehindTheTier(t *testing.T) {
	e := tierEnv(t, v130)
	cfg := config.Default()
	createOpenPolicy(t, e, "shop")
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v130) })
	if st, _ := status(t, e, "shop"); len(st.Exposures) != 0 || st.Tier != config.TierName {
		t.Errorf("shop in tier mode: %+v", st)
	}
}

func createOpenPolicy(t *testing.T, e *testbed.Env, namespace string) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "from-everywhere", Namespace: namespace},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}},
		},
	}
	if _, err := e.Kube.NetworkingV1().NetworkPolicies(namespace).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Kube.NetworkingV1().NetworkPolicies(namespace).Delete(context.Background(), np.Name, metav1.DeleteOptions{})
	})
}
