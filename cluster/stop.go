package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// StopDeployment scales a Deployment to zero and waits until none of its
// pods is left, so that a running calico-pni cannot put back what Cleanup
// removes. A missing Deployment is not an error.
func StopDeployment(ctx context.Context, kube kubernetes.Interface, namespace, name string, log *slog.Logger) error {
	deployments := kube.AppsV1().Deployments(namespace)
	patch := []byte(`{"spec":{"replicas":0}}`)
	d, err := deployments.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scaling deployment %s/%s to zero: %w", namespace, name, err)
	}
	selector := metav1.FormatLabelSelector(d.Spec.Selector)
	if log != nil {
		log.Info("waiting for the daemon's pods to stop", "deployment", namespace+"/"+name)
	}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, fmt.Errorf("listing the pods of deployment %s/%s: %w", namespace, name, err)
		}
		return len(pods.Items) == 0, nil
	})
}
