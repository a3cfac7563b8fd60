package testbed

import (
	"context"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLoadWorkloads loads the article's cluster and workloads into a real
// API server with Calico's CRDs and reads back what a running cluster
// would hold: a pod's reported address, a service account, the users'
// Kubernetes and Calico policies, Felix's configuration.
func TestLoadWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	e, err := Start(Options{CalicoV1: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx := context.Background()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadCluster(ctx, filepath.Join(root, "testdata", "article-cluster.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadWorkloads(ctx, filepath.Join(root, "testdata", "article-workloads.yaml")); err != nil {
		t.Fatal(err)
	}
	pod, err := e.Kube.CoreV1().Pods("shop").Get(ctx, "web-6f7c9d8b4-xk2lp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.PodIP != "10.42.1.10" || pod.Status.Phase != "Running" || pod.Spec.NodeName != "worker-1" {
		t.Errorf("pod status %+v, node %q", pod.Status, pod.Spec.NodeName)
	}
	if _, err := e.Kube.CoreV1().ServiceAccounts("shop").Get(ctx, "shop-db", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if np, err := e.Kube.NetworkingV1().NetworkPolicies("redis").Get(ctx, "redis-from-consumers", metav1.GetOptions{}); err != nil || len(np.Spec.Ingress) != 1 {
		t.Errorf("redis-from-consumers: %v %+v", err, np)
	}
	if _, err := e.Dynamic.Resource(workloadResources["crd.projectcalico.org/v1 NetworkPolicy"]).Namespace("shop").Get(ctx, "default.db-guard", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := e.Dynamic.Resource(workloadResources["crd.projectcalico.org/v1 FelixConfiguration"]).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
}
