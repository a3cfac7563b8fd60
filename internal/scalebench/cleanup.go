package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/policies"
)

// CleanupFlags are the flags of `calico-pni cleanup` that size it.
type CleanupFlags struct {
	Workers int
	QPS     float32
	Burst   int
	Settle  time.Duration
}

// DefaultCleanup is what `calico-pni cleanup` uses when given no flags,
// as the chart's uninstall hook runs it.
var DefaultCleanup = CleanupFlags{Workers: 32, QPS: 500, Burst: 1000, Settle: cluster.DefaultSettle}

// cleanup runs calico-pni's uninstall (cluster.Cleanup, what `calico-pni
// cleanup` runs) with the daemon stopped, and measures how long until
// nothing of calico-pni's is left and how many writes it made.
func (b *bench) cleanup(ctx context.Context) (Change, cluster.CleanupResult, error) {
	f := b.o.Cleanup
	cfg := rest.CopyConfig(b.env.Config)
	cfg.QPS, cfg.Burst = f.QPS, f.Burst
	var writes atomic.Int64
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet {
				writes.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Change{}, cluster.CleanupResult{}, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Change{}, cluster.CleanupResult{}, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return Change{}, cluster.CleanupResult{}, err
	}
	start := time.Now()
	removed, err := cluster.Cleanup(ctx, kube, dyn, disc, cluster.CleanupOptions{Workers: f.Workers, Settle: f.Settle})
	took := time.Since(start)
	if err != nil {
		return Change{}, removed, fmt.Errorf("cleanup: %w", err)
	}
	if err := b.nothingLeft(ctx); err != nil {
		return Change{}, removed, err
	}
	return Change{What: "cleanup", Took: took, Writes: int(writes.Load())}, removed, nil
}

// nothingLeft checks on the server itself, not through the watcher, that
// no object, label or status of calico-pni's is left.
func (b *bench) nothingLeft(ctx context.Context) error {
	list, err := b.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ns := range list.Items {
		if _, ok := ns.Annotations[policies.StatusAnnotation]; ok {
			return fmt.Errorf("after the cleanup namespace %s still has its status", ns.Name)
		}
		for k := range ns.Labels {
			if strings.HasPrefix(k, policies.LabelPrefix) {
				return fmt.Errorf("after the cleanup namespace %s still has label %s", ns.Name, k)
			}
		}
	}
	for _, kind := range watchedKinds(b.api) {
		resource := b.env.Dynamic.Resource(b.api.Resource(kind))
		if kind == "Tier" {
			resource = b.env.Dynamic.Resource(b.api.TierResource())
		}
		left, err := resource.List(ctx, metav1.ListOptions{LabelSelector: calico.ManagedByLabel + "=" + calico.ManagedByValue})
		if err != nil {
			return err
		}
		if len(left.Items) > 0 {
			return fmt.Errorf("after the cleanup %d %s objects of calico-pni's are left, %s first", len(left.Items), kind, left.Items[0].GetName())
		}
	}
	return nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
