package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// watcher follows the namespaces, the policies of every kind calico-pni
// may write and the tiers on the server, to see when the daemon's writes
// have landed without asking it.
type watcher struct {
	api        calico.API
	namespaces cache.SharedIndexInformer
	objects    map[string]cache.SharedIndexInformer // by kind
	cancel     context.CancelFunc

	mu         sync.Mutex
	wantStatus map[string]string // namespace -> status annotation, exposures left out
	wantObject map[string]bool   // "Kind/stored name"
	okStatus   map[string]bool
	exposed    map[string]bool // namespaces whose status lists exposures
	managed    map[string]bool // "Kind/stored name" of calico-pni's objects on the server
	changed    chan struct{}
}

// watchedKinds are the policy kinds the API serves, and Tier where it is
// served.
func watchedKinds(api calico.API) []string {
	kinds := api.PolicyKinds()
	if api.Tiers {
		kinds = append(kinds, "Tier")
	}
	return kinds
}

func newWatcher(ctx context.Context, cfg *rest.Config, api calico.API) (*watcher, error) {
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{api: api, cancel: cancel, objects: map[string]cache.SharedIndexInformer{},
		wantStatus: map[string]string{}, wantObject: map[string]bool{}, okStatus: map[string]bool{},
		exposed: map[string]bool{}, managed: map[string]bool{},
		changed: make(chan struct{}, 1)}
	notify := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	w.namespaces = cache.NewSharedIndexInformer(cache.NewListWatchFromClient(kube.CoreV1().RESTClient(), "namespaces", "", fields.Everything()), &corev1.Namespace{}, 0, cache.Indexers{})
	_, _ = w.namespaces.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.seeNamespace(o); notify() },
		UpdateFunc: func(_, o any) { w.seeNamespace(o); notify() },
	})
	synced := []cache.InformerSynced{w.namespaces.HasSynced}
	for _, kind := range watchedKinds(api) {
		resource := dyn.Resource(api.Resource(kind))
		if kind == "Tier" {
			resource = dyn.Resource(api.TierResource())
		}
		inf := cache.NewSharedIndexInformer(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return resource.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return resource.Watch(ctx, o)
			},
		}, &unstructured.Unstructured{}, 0, cache.Indexers{})
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { w.seeObject(kind, o, true); notify() },
			UpdateFunc: func(_, o any) { w.seeObject(kind, o, true); notify() },
			DeleteFunc: func(o any) { w.seeObject(kind, o, false); notify() },
		})
		w.objects[kind] = inf
		synced = append(synced, inf.HasSynced)
	}
	go w.namespaces.Run(ctx.Done())
	for _, inf := range w.objects {
		go inf.Run(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil, errors.New("watching the benchmark cluster")
	}
	return w, nil
}

func (w *watcher) stop() { w.cancel() }

// want sets what the cluster should hold: every policy and the tier of
// d, no other object of calico-pni's, and every namespace's status.
func (w *watcher) want(d policies.Desired) {
	w.mu.Lock()
	w.wantStatus, w.wantObject = map[string]string{}, map[string]bool{}
	for _, ns := range d.Namespaces {
		w.wantStatus[ns.Name] = ns.Status.Encode()
	}
	for _, p := range d.Policies {
		w.wantObject[p.Kind()+"/"+w.api.StoredNameIn(p.Spec.Tier, p.Name)] = true
	}
	if d.Tier != nil {
		w.wantObject["Tier/"+d.Tier.Name] = true
	}
	w.okStatus = map[string]bool{}
	w.mu.Unlock()
	for _, o := range w.namespaces.GetStore().List() {
		w.seeNamespace(o)
	}
}

// seeNamespace compares a namespace's status with the wanted one. The
// exposures the daemon finds are left out of the comparison (the
// generator does not compute them) and counted instead; so is the flow
// evidence the daemon adds to a staged namespace's status (pending
// denies, or why there are none: the bench runs no Goldmane).
func (w *watcher) seeNamespace(o any) {
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	got := ns.Annotations[policies.StatusAnnotation]
	w.mu.Lock()
	want := w.wantStatus[ns.Name]
	w.mu.Unlock()
	exposed := false
	if got != want && got != "" {
		if st, err := policies.DecodeStatus(got); err == nil && (len(st.Exposures) > 0 || st.Pending != nil) {
			exposed = len(st.Exposures) > 0
			st.Exposures, st.Pending = nil, nil
			got = st.Encode()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.okStatus[ns.Name] = got == want
	w.exposed[ns.Name] = exposed
}

func (w *watcher) seeObject(kind string, o any, present bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := kind + "/" + u.GetName()
	mine := present && u.GetLabels()[calico.ManagedByLabel] == calico.ManagedByValue
	w.mu.Lock()
	defer w.mu.Unlock()
	if mine {
		w.managed[key] = true
	} else {
		delete(w.managed, key)
	}
}

// complete reports whether the cluster holds what want asked for.
func (w *watcher) complete() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	statuses, objects, extra := 0, 0, 0
	for ns := range w.wantStatus {
		if w.okStatus[ns] {
			statuses++
		}
	}
	for key := range w.wantObject {
		if w.managed[key] {
			objects++
		}
	}
	for key := range w.managed {
		if !w.wantObject[key] {
			extra++
		}
	}
	done := statuses == len(w.wantStatus) && objects == len(w.wantObject) && extra == 0
	return done, fmt.Sprintf("%d/%d statuses, %d/%d policies and tiers, %d objects to remove", statuses, len(w.wantStatus), objects, len(w.wantObject), extra)
}

// exposedNamespaces counts the namespaces whose status lists exposures.
func (w *watcher) exposedNamespaces() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.exposed {
		if e {
			n++
		}
	}
	return n
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

// policy returns calico-pni's policy of one of the given v3 names, in
// whatever kind it is stored and in the default tier or calico-pni's.
func (w *watcher) policy(names ...string) *unstructured.Unstructured {
	for _, name := range names {
		for _, kind := range w.api.PolicyKinds() {
			for _, tier := range []string{calico.DefaultTier, config.TierName} {
				o, ok, _ := w.objects[kind].GetStore().GetByKey(w.api.StoredNameIn(tier, name))
				if u, _ := o.(*unstructured.Unstructured); ok && u.GetLabels()[calico.ManagedByLabel] == calico.ManagedByValue {
					return u
				}
			}
		}
	}
	return nil
}

// policyNames are the names a calico-pni policy "pni-<what>" has in the
// default tier and in calico-pni's, enforced or staged
// (policies/generate.go: the prefixes "pni-", "pni-tier-", and "staged-"
// after them).
func policyNames(what string) []string {
	return []string{"pni-" + what, "pni-tier-" + what, "pni-staged-" + what, "pni-tier-staged-" + what}
}

// projectPolicy returns the project's allow policy, when the status names
// it and it is on the server.
func (w *watcher) projectPolicy(st policies.Status, project string) *unstructured.Unstructured {
	for _, name := range policyNames("project-" + project) {
		if slices.Contains(st.Policies, name) {
			return w.policy(name)
		}
	}
	return nil
}
