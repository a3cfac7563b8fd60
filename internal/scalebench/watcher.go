package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// watcher follows the namespaces and policies on the server, to see when
// the daemon's writes have landed without asking it.
type watcher struct {
	namespaces cache.SharedIndexInformer
	policies   cache.SharedIndexInformer
	cancel     context.CancelFunc

	mu         sync.Mutex
	wantStatus map[string]string // namespace -> status annotation
	wantPolicy map[string]bool   // stored names
	okStatus   map[string]bool
	okPolicy   map[string]bool
	changed    chan struct{}
}

func newWatcher(ctx context.Context, cfg *rest.Config, d policies.Desired) (*watcher, error) {
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, wantStatus: map[string]string{}, wantPolicy: map[string]bool{},
		okStatus: map[string]bool{}, okPolicy: map[string]bool{}, changed: make(chan struct{}, 1)}
	for _, ns := range d.Namespaces {
		w.wantStatus[ns.Name] = ns.Status.Encode()
	}
	for _, p := range d.Policies {
		w.wantPolicy[api.StoredName(p.Name)] = true
	}
	w.namespaces = cache.NewSharedIndexInformer(cache.NewListWatchFromClient(kube.CoreV1().RESTClient(), "namespaces", "", fields.Everything()), &corev1.Namespace{}, 0, cache.Indexers{})
	w.policies = cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return dyn.Resource(api.Resource("GlobalNetworkPolicy")).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return dyn.Resource(api.Resource("GlobalNetworkPolicy")).Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	notify := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	_, _ = w.namespaces.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.seeNamespace(o); notify() },
		UpdateFunc: func(_, o any) { w.seeNamespace(o); notify() },
	})
	_, _ = w.policies.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.seePolicy(o, true); notify() },
		UpdateFunc: func(_, o any) { w.seePolicy(o, true); notify() },
		DeleteFunc: func(o any) { w.seePolicy(o, false); notify() },
	})
	go w.namespaces.Run(ctx.Done())
	go w.policies.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.namespaces.HasSynced, w.policies.HasSynced) {
		return nil, errors.New("watching the benchmark cluster")
	}
	return w, nil
}

func (w *watcher) stop() { w.cancel() }

func (w *watcher) seeNamespace(o any) {
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.okStatus[ns.Name] = ns.Annotations[policies.StatusAnnotation] == w.wantStatus[ns.Name]
}

func (w *watcher) seePolicy(o any, present bool) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.okPolicy[u.GetName()] = present && u.GetLabels()[calico.ManagedByLabel] == calico.ManagedByValue
}

// complete reports whether every wanted status and policy is on the server.
func (w *watcher) complete() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	statuses, pols := 0, 0
	for ns := range w.wantStatus {
		if w.okStatus[ns] {
			statuses++
		}
	}
	for p := range w.wantPolicy {
		if w.okPolicy[p] {
			pols++
		}
	}
	done := statuses == len(w.wantStatus) && pols == len(w.wantPolicy)
	return done, fmt.Sprintf("%d/%d statuses, %d/%d policies", statuses, len(w.wantStatus), pols, len(w.wantPolicy))
}

func (w *watcher) waitComplete(ctx context.Context, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.After(timeout)
	for {
		done, progress := w.complete()
		if done {
			return nil
		}
		select {
		case <-w.changed:
		case <-time.After(time.Second):
		case <-exited:
			return fmt.Errorf("the daemon exited before it was done (%s)", progress)
		case <-deadline:
			return fmt.Errorf("not complete after %s: %s", timeout, progress)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitFor polls the watcher's caches until check holds.
func (w *watcher) waitFor(ctx context.Context, timeout time.Duration, check func() bool) error {
	deadline := time.After(timeout)
	for !check() {
		select {
		case <-w.changed:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			return errors.New("timed out")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *watcher) namespace(name string) *corev1.Namespace {
	o, ok, _ := w.namespaces.GetStore().GetByKey(name)
	if !ok {
		return nil
	}
	return o.(*corev1.Namespace)
}

func (w *watcher) policy(stored string) *unstructured.Unstructured {
	o, ok, _ := w.policies.GetStore().GetByKey(stored)
	if !ok {
		return nil
	}
	return o.(*unstructured.Unstructured)
}
