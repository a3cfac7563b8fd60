package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// printTier prints calico-pni's tier as the API server holds it.
func printTier(ctx context.Context, env *testbed.Env, m mode) error {
	u, err := env.Dynamic.Resource(m.api.TierResource()).Get(ctx, m.tier, metav1.GetOptions{})
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(map[string]any{"metadata": map[string]any{"name": u.GetName(), "labels": u.GetLabels()}, "spec": u.Object["spec"]})
	if err != nil {
		return err
	}
	fmt.Printf("%s\nOrder 10000 comes before the default tier's 1,000,000: what the tier denies, no tenant policy is asked about.\n", b)
	return nil
}

// wallOpener is a tenant's NetworkPolicy that admits every namespace and
// every address into shop: it opens the wall in the default tier, and
// cannot in calico-pni's own.
var wallOpener = &networkingv1.NetworkPolicy{
	ObjectMeta: metav1.ObjectMeta{Name: "let-everyone-in", Namespace: "shop"},
	Spec: networkingv1.NetworkPolicySpec{
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}},
		}}},
	},
}

// openWall lets a tenant of shop try to open its wall, then explains a
// connection from a namespace in no project that the policy admits.
func openWall(ctx context.Context, env *testbed.Env, m mode, run func(...string) error, logPath string) error {
	step("A tenant of shop tries to open its wall: a NetworkPolicy that admits every namespace and every address")
	b, err := yaml.Marshal(map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": wallOpener.Name, "namespace": wallOpener.Namespace}, "spec": wallOpener.Spec})
	if err != nil {
		return err
	}
	fmt.Print(string(b))
	if _, err := env.Kube.NetworkingV1().NetworkPolicies("shop").Create(ctx, wallOpener, metav1.CreateOptions{}); err != nil {
		return err
	}
	if m.tier == "" {
		// In the default tier it does open the wall: calico-pni reports
		// it in the namespace's status.
		found, err := waitExposures(ctx, env, wallOpener.Name)
		if err != nil {
			return fmt.Errorf("%w; log:\n%s", err, readFile(logPath))
		}
		fmt.Println("\nIn the default tier it opens the wall, and shop's status says so (exposures):")
		for _, e := range found {
			fmt.Printf("  %s %s/%s: %s %s\n", e.Kind, e.Namespace, e.Name, e.Direction, e.Opens)
		}
	}
	step("Does it let sandbox (in no project) reach the shop's cart? calico-pni explain --kubeconfig ... --from sandbox/debug --to shop/cart-7d8f9c6b5-m4n7q --port 80")
	if err := run("explain", "--from", "sandbox/debug", "--to", "shop/cart-7d8f9c6b5-m4n7q", "--port", "80"); err != nil {
		return err
	}
	if m.tier != "" {
		fmt.Printf("\nshop/let-everyone-in lives in the default tier, after calico-pni's: the wall denied first, so it was never asked.\nInside the project it still decides: a tenant narrows or widens its own room, never the walls.\n")
	}
	return nil
}

// waitExposures waits until shop's status lists exposures by the named
// policy, and returns them.
func waitExposures(ctx context.Context, env *testbed.Env, name string) ([]policies.Exposure, error) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		st, _ := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
		var found []policies.Exposure
		for _, e := range st.Exposures {
			if e.Name == name {
				found = append(found, e)
			}
		}
		if len(found) > 0 {
			return found, nil
		}
	}
	return nil, fmt.Errorf("shop's status did not list %s as an exposure within 30s", name)
}

// runCommand runs one of calico-pni's commands against the demo's API
// server, as a user would, and prints its output.
func runCommand(binary, kubeconfig string, args ...string) error {
	cmd := exec.Command(binary, append(args, "--kubeconfig", kubeconfig)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("calico-pni %s: exit status %d", args[0], exit.ExitCode())
		}
		return err
	}
	return nil
}
