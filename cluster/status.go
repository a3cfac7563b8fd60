package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/policies"
)

// NamespaceStatus is a namespace and the status calico-pni last wrote on
// it (the annotation calico-pni.io/status).
type NamespaceStatus struct {
	Name   string
	Status policies.Status
	// Missing says the namespace has no status: calico-pni has not passed
	// over it yet, or does not run.
	Missing bool
	// Err says the annotation is there but cannot be read.
	Err error
}

// NamespaceStatuses reads the status of every namespace from the API
// server, sorted by name. It reads what the daemon wrote and computes
// nothing itself, so it shows what the cluster holds.
func NamespaceStatuses(ctx context.Context, kube kubernetes.Interface) ([]NamespaceStatus, error) {
	var out []NamespaceStatus
	err := EachListed(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Namespaces().List(ctx, o)
	}, func(obj runtime.Object) {
		ns, ok := obj.(*corev1.Namespace)
		if !ok {
			return
		}
		s := NamespaceStatus{Name: ns.Name}
		value, ok := ns.Annotations[policies.StatusAnnotation]
		switch {
		case !ok:
			s.Missing = true
		default:
			var err error
			if s.Status, err = policies.DecodeStatus(value); err != nil {
				s.Err = fmt.Errorf("annotation %s of namespace %s is not a calico-pni status: %w", policies.StatusAnnotation, ns.Name, err)
			}
		}
		out = append(out, s)
	})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	slices.SortFunc(out, func(a, b NamespaceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
