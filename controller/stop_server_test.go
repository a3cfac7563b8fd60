package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

// StopDeployment scales the daemon's Deployment to zero and returns only
// once its last pod is gone.
func TestStopDeployment(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	labels := map[string]string{"app.kubernetes.io/name": "calico-pni-stop-test"}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "calico-pni", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "calico-pni"}}},
			},
		},
	}
	if _, err := e.Kube.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Kube.AppsV1().Deployments("default").Delete(context.Background(), "calico-pni", metav1.DeleteOptions{})
	})
	// The test bed runs no controllers: stand in a pod of the Deployment.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "calico-pni-abc", Namespace: "default", Labels: labels}, Spec: d.Spec.Template.Spec}
	if _, err := e.Kube.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() { returned <- cluster.StopDeployment(ctx, e.Kube, "default", "calico-pni", nil) }()
	// Once the Deployment is scaled to zero, StopDeployment waits for the
	// pod: it must not return before the pod is deleted.
	testbed.Eventually(t, 30*time.Second, func() error {
		got, err := e.Kube.AppsV1().Deployments("default").Get(ctx, "calico-pni", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *got.Spec.Replicas != 0 {
			return fmt.Errorf("replicas %d", *got.Spec.Replicas)
		}
		return nil
	})
	select {
	case err := <-returned:
		t.Fatalf("StopDeployment returned (%v) while a pod of the Deployment was still there", err)
	default:
	}
	if err := e.Kube.CoreV1().Pods("default").Delete(ctx, "calico-pni-abc", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("StopDeployment did not return after the last pod went")
	}
	got, err := e.Kube.AppsV1().Deployments("default").Get(ctx, "calico-pni", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 0 {
		t.Errorf("replicas after StopDeployment: %v (%v)", got.Spec.Replicas, err)
	}
	if err := cluster.StopDeployment(ctx, e.Kube, "default", "missing", nil); err != nil {
		t.Errorf("a missing Deployment: %v", err)
	}
}
