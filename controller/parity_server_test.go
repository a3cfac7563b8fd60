package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// policySpec reads one managed policy back from the server.
func policySpec(e *testbed.Env, name string) (calico.GlobalNetworkPolicySpec, bool, error) {
	objects, err := managedPolicies(e, v128)
	if err != nil {
		return calico.GlobalNetworkPolicySpec{}, false, err
	}
	u, ok := objects["/"+v128.StoredName(name)]
	if !ok {
		return calico.GlobalNetworkPolicySpec{}, false, nil
	}
	spec, err := calico.SpecOf(u)
	return spec, true, err
}

// ruleTo reports whether a rule of rules admits traffic to namespace ns.
func ruleTo(rules []calico.Rule, ns string) bool {
	for _, r := range rules {
		if r.Destination.NamespaceSelector == fmt.Sprintf("%s == '%s'", calico.NameLabel, ns) {
			return true
		}
	}
	return false
}

func mergePatch(t *testing.T, e *testbed.Env, name string, patch map[string]any) {
	t.Helper()
	b, _ := json.Marshal(patch)
	if _, err := e.Kube.CoreV1().Namespaces().Patch(context.Background(), name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Everything Rancher's own isolation does, on the article fixture, changed
// live; each step ends with the whole desired state read back.
func TestRancherParity(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	settled := func(c *config.Config) {
		t.Helper()
		testbed.Eventually(t, wait, func() error { return converged(e, c, v128) })
	}
	settled(cfg)

	t.Run("host network addresses follow the nodes", func(t *testing.T) {
		t.Cleanup(func() {
			patch := []byte(`{"metadata":{"annotations":{"projectcalico.org/IPv4WireguardInterfaceAddr":null}}}`)
			if _, err := e.Kube.CoreV1().Nodes().Patch(context.Background(), "worker-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
		})
		patch := []byte(`{"metadata":{"annotations":{"projectcalico.org/IPv4WireguardInterfaceAddr":"10.42.9.9"}}}`)
		if _, err := e.Kube.CoreV1().Nodes().Patch(ctx, "worker-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		settled(cfg)
		spec, _, err := policySpec(e, "pni-allow-from-host-network")
		if err != nil || !slices.Contains(spec.Ingress[0].Source.Nets, "10.42.9.9/32") {
			t.Errorf("the WireGuard address is not a host-network source: %+v %v", spec.Ingress, err)
		}
		patch = []byte(`{"metadata":{"annotations":{"projectcalico.org/IPv4WireguardInterfaceAddr":null}}}`)
		if _, err := e.Kube.CoreV1().Nodes().Patch(ctx, "worker-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		settled(cfg)
	})

	t.Run("NodePort Services come and go", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop-batch"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "api"},
				Ports: []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP}}},
		}
		if _, err := e.Kube.CoreV1().Services("shop-batch").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.Kube.CoreV1().Services("shop-batch").Delete(context.Background(), "api", metav1.DeleteOptions{})
		})
		settled(cfg)
		spec, _, _ := policySpec(e, "pni-allow-external-services")
		if !ruleTo(spec.Ingress, "shop-batch") {
			t.Fatalf("no rule for the new NodePort Service: %+v", spec.Ingress)
		}
		if st, _ := status(t, e, "shop-batch"); !slices.Contains(st.Policies, "pni-allow-external-services") {
			t.Errorf("shop-batch does not list the policy: %v", st.Policies)
		}
		// Type changed to ClusterIP: the rule goes.
		live, err := e.Kube.CoreV1().Services("shop-batch").Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		live.Spec.Type = corev1.ServiceTypeClusterIP
		live.Spec.Ports[0].NodePort = 0
		if _, err := e.Kube.CoreV1().Services("shop-batch").Update(ctx, live, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		settled(cfg)
		if spec, _, _ := policySpec(e, "pni-allow-external-services"); ruleTo(spec.Ingress, "shop-batch") {
			t.Errorf("the rule outlived the NodePort: %+v", spec.Ingress)
		}
	})

	t.Run("host ports are admitted without touching the pod", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "relay", Namespace: "redis", Labels: map[string]string{"app": "relay"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "relay", Image: "relay",
				Ports: []corev1.ContainerPort{{ContainerPort: 7000, HostPort: 7000, Protocol: corev1.ProtocolUDP}}}}},
		}
		created, err := e.Kube.CoreV1().Pods("redis").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.Kube.CoreV1().Pods("redis").Delete(context.Background(), "relay", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		})
		settled(cfg)
		spec, _, _ := policySpec(e, "pni-allow-host-ports")
		if !ruleTo(spec.Ingress, "redis") {
			t.Fatalf("no rule for the host port: %+v", spec.Ingress)
		}
		after, err := e.Kube.CoreV1().Pods("redis").Get(ctx, "relay", metav1.GetOptions{})
		if err != nil || after.ResourceVersion != created.ResourceVersion {
			t.Errorf("calico-pni changed the pod (rancher#26677): %v %v", after.Labels, err)
		}
		if err := e.Kube.CoreV1().Pods("redis").Delete(ctx, "relay", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		settled(cfg)
		if spec, _, _ := policySpec(e, "pni-allow-host-ports"); ruleTo(spec.Ingress, "redis") {
			t.Errorf("the rule outlived the pod: %+v", spec.Ingress)
		}
	})

	t.Run("a namespace opts out and back in", func(t *testing.T) {
		t.Cleanup(func() {
			mergePatch(t, e, "shop-batch", map[string]any{"metadata": map[string]any{"annotations": map[string]any{config.IsolationAnnotation: nil}}})
		})
		mergePatch(t, e, "shop-batch", map[string]any{"metadata": map[string]any{"annotations": map[string]any{config.IsolationAnnotation: "disabled"}}})
		settled(cfg)
		if st, labels := status(t, e, "shop-batch"); st.State != policies.Exempt || labels[policies.IsolatedLabel] != "" {
			t.Errorf("opted out: %+v %v", st, labels)
		}
		mergePatch(t, e, "shop-batch", map[string]any{"metadata": map[string]any{"annotations": map[string]any{config.IsolationAnnotation: nil}}})
		settled(cfg)
		if st, _ := status(t, e, "shop-batch"); st.State != policies.Isolated {
			t.Errorf("opted back in: %+v", st)
		}
	})

	t.Run("the internet label", func(t *testing.T) {
		if st, _ := status(t, e, "payments"); !slices.Contains(st.Policies, "pni-allow-internet") {
			t.Errorf("payments does not list pni-allow-internet: %v", st.Policies)
		}
		spec, ok, _ := policySpec(e, "pni-allow-internet")
		if !ok || len(spec.Egress) != 2 || !slices.Contains(spec.Egress[0].Destination.NotNets, "10.42.0.0/16") {
			t.Errorf("pni-allow-internet: %+v", spec)
		}
	})

	t.Run("configuration: peers, role consumers, no opt-outs", func(t *testing.T) {
		next := *config.Default()
		next.ProjectPeers = []config.ProjectPeer{{Project: "p-b6jcw", From: []string{"p-mcb29"}, Protocol: "TCP", Ports: []calico.Port{calico.PortNumber(8080)}}}
		next.Roles = map[string]config.Role{"redis": {Protocol: "TCP", Ports: []calico.Port{calico.PortNumber(6379)}, Consumers: config.ConsumersSameProject, Projects: []string{}}}
		next.AllowOptOut = false
		r.c.SetConfig(&next)
		settled(&next)
		spec, _, _ := policySpec(e, "pni-project-p-b6jcw")
		if len(spec.Ingress) != 2 || spec.Ingress[1].Source.NamespaceSelector != "calico-pni.io/project == 'p-mcb29'" {
			t.Errorf("p-b6jcw does not accept its peer: %+v", spec.Ingress)
		}
		spec, _, _ = policySpec(e, "pni-project-p-mcb29")
		if len(spec.Egress) != 2 || spec.Egress[1].Destination.NamespaceSelector != "calico-pni.io/project == 'p-b6jcw'" {
			t.Errorf("p-mcb29 cannot reach its peer: %+v", spec.Egress)
		}
		if st, _ := status(t, e, "shop"); !strings.Contains(strings.Join(st.Problems, ""), "network-policy/allow_redis is ignored") {
			t.Errorf("shop consumes redis from another project; its status must say the label is ignored: %+v", st)
		}
		if st, labels := status(t, e, "legacy"); st.State != policies.Error || labels[policies.IsolatedLabel] != "true" {
			t.Errorf("opting out is forbidden now: %+v %v", st, labels)
		}
		r.c.SetConfig(cfg)
		settled(cfg)
	})

	t.Run("the System project keeps its own policies", func(t *testing.T) {
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "own-policy", Namespace: "kube-system"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
		}
		created, err := e.Kube.NetworkingV1().NetworkPolicies("kube-system").Create(ctx, np, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.Kube.NetworkingV1().NetworkPolicies("kube-system").Delete(context.Background(), "own-policy", metav1.DeleteOptions{})
		})
		r.waitPass(t, "refresh", r.c.Refresh)
		settled(cfg)
		got, err := e.Kube.NetworkingV1().NetworkPolicies("kube-system").Get(ctx, "own-policy", metav1.GetOptions{})
		if err != nil || got.ResourceVersion != created.ResourceVersion {
			t.Errorf("a user's policy in the System project changed: %v", err)
		}
		for _, ns := range []string{"kube-system", "cattle-system", "cattle-monitoring-system", "calico-system"} {
			if st, labels := status(t, e, ns); st.Isolated || labels[policies.IsolatedLabel] != "" || len(st.Policies) > 0 {
				t.Errorf("System namespace %s is selected: %+v %v", ns, st, labels)
			}
		}
	})
}
