package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/policies"
)

// createCluster writes the synthetic cluster as fast as the server takes it.
func createCluster(ctx context.Context, kube kubernetes.Interface, c *synthetic.Cluster, workers int) error {
	err := parallel(workers, len(c.Namespaces), func(i int) error {
		ns := c.Namespaces[i]
		_, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			live, err := kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			live.Labels, live.Annotations = ns.Labels, ns.Annotations
			_, err = kube.CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{})
			return err
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating namespaces: %w", err)
	}
	err = parallel(workers, len(c.Nodes), func(i int) error {
		created, err := kube.CoreV1().Nodes().Create(ctx, c.Nodes[i], metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status = c.Nodes[i].Status
		_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating nodes: %w", err)
	}
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{synthetic.NodeAddress(0, 0)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("https"), Port: ptr(int32(6443)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	_, err = kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
	return err
}

func ptr[T any](v T) *T { return &v }

// plainClient makes the writes the daemon's cold start makes (the tier
// and every policy created, every namespace patched with labels and
// status of the same size, in the same two rounds), in parallel and without any client-side
// limit, under names and keys the daemon does not read; then removes them
// (not timed).
func plainClient(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, api calico.API, d policies.Desired, workers int) (time.Duration, error) {
	objects := make([]*unstructured.Unstructured, len(d.Policies))
	for i, p := range d.Policies {
		u := api.Object(p)
		u.SetName("plain-" + u.GetName())
		u.SetLabels(map[string]string{"bench": "plain-client"})
		objects[i] = u
	}
	var tier *unstructured.Unstructured
	if d.Tier != nil {
		tier = api.TierObject(*d.Tier)
		tier.SetName("plain-" + tier.GetName())
		tier.SetLabels(map[string]string{"bench": "plain-client"})
	}
	// As the daemon's plan does, a namespace that is isolated gets its
	// project label in a step before (plan/namespaces.go, relabel), then
	// the rest with its status.
	var relabels []namespacePatch
	patches := make([]namespacePatch, len(d.Namespaces))
	for i, ns := range d.Namespaces {
		labels := map[string]string{}
		for k, v := range ns.Labels {
			labels["bench-"+k] = v
		}
		if p, ok := ns.Labels[policies.ProjectLabel]; ok && ns.Labels[policies.IsolatedLabel] == "true" {
			relabels = append(relabels, newNamespacePatch(ns.Name, map[string]string{"bench-" + policies.ProjectLabel: p}, nil))
		}
		patches[i] = newNamespacePatch(ns.Name, labels, map[string]string{"bench-" + policies.StatusAnnotation: ns.Status.Encode()})
	}
	start := time.Now()
	var err error
	if tier != nil {
		_, err = dyn.Resource(api.TierResource()).Create(ctx, tier, metav1.CreateOptions{})
	}
	if err == nil {
		err = parallel(workers, len(objects), func(i int) error {
			_, err := dyn.Resource(api.Resource(objects[i].GetKind())).Create(ctx, objects[i], metav1.CreateOptions{})
			return err
		})
	}
	for _, round := range [][]namespacePatch{relabels, patches} {
		if err == nil {
			err = parallel(workers, len(round), func(i int) error {
				_, err := kube.CoreV1().Namespaces().Patch(ctx, round[i].name, types.MergePatchType, round[i].patch, metav1.PatchOptions{})
				return err
			})
		}
	}
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("plain client: %w", err)
	}
	// Undo, untimed.
	for _, kind := range api.PolicyKinds() {
		if err := dyn.Resource(api.Resource(kind)).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=plain-client"}); err != nil {
			return 0, err
		}
	}
	if tier != nil {
		if err := dyn.Resource(api.TierResource()).Delete(ctx, tier.GetName(), metav1.DeleteOptions{}); err != nil {
			return 0, err
		}
	}
	err = parallel(workers, len(d.Namespaces), func(i int) error {
		ns := d.Namespaces[i]
		labels := map[string]any{}
		for k := range ns.Labels {
			labels["bench-"+k] = nil
		}
		undo, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"labels": labels, "annotations": map[string]any{"bench-" + policies.StatusAnnotation: nil},
		}})
		_, err := kube.CoreV1().Namespaces().Patch(ctx, ns.Name, types.MergePatchType, undo, metav1.PatchOptions{})
		return err
	})
	return elapsed, err
}

type namespacePatch struct {
	name  string
	patch []byte
}

func newNamespacePatch(name string, labels, annotations map[string]string) namespacePatch {
	meta := map[string]any{"labels": labels}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	b, _ := json.Marshal(map[string]any{"metadata": meta})
	return namespacePatch{name, b}
}

// createUserPolicies writes n users' Kubernetes NetworkPolicies of the
// synthetic cluster (four shapes users write, in namespaces picked at
// random).
func createUserPolicies(ctx context.Context, kube kubernetes.Interface, c *synthetic.Cluster, n, workers int) error {
	if n == 0 {
		return nil
	}
	nps := c.Workloads(0, n).NetworkPolicies
	err := parallel(workers, len(nps), func(i int) error {
		_, err := kube.NetworkingV1().NetworkPolicies(nps[i].Namespace).Create(ctx, nps[i], metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating users' NetworkPolicies: %w", err)
	}
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error.
func parallel(workers, n int, fn func(int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}
