package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// Options configure a Controller.
type Options struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	Config    *config.Config
	// CalicoVersion overrides the version read from ClusterInformation.
	CalicoVersion string
	// DryRun logs the writes a pass would make and makes none.
	DryRun bool
	// Workers is how many writes run at once within one step of a pass.
	Workers int
	// Debounce is how long a watch event waits before it starts a pass, so
	// that a burst of events makes one pass.
	Debounce time.Duration
	// Recorder records events on namespaces and on Self; nil records none.
	Recorder record.EventRecorder
	// Self is the object events about calico-pni itself are recorded on
	// (its Pod); nil records none.
	Self    *corev1.ObjectReference
	Metrics *Metrics
	Logger  *slog.Logger
}

// namespaceBatch is how many namespaces a pass plans and writes at a time.
const namespaceBatch = 1000

// Queue keys: a pass after watch events reads the caches; a refresh reads
// everything from the API server and detects the Calico API again.
const (
	passKey    = "pass"
	refreshKey = "refresh"
)

// Controller keeps Calico policies and namespace labels in step with the
// cluster. Start fills its caches; Lead reconciles while the context lives
// (only the leader calls it).
type Controller struct {
	o      Options
	log    *slog.Logger
	cfg    atomic.Pointer[config.Config]
	queue  atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]
	ready  atomic.Bool
	synced atomic.Bool

	namespaces cache.SharedIndexInformer
	nodes      cache.SharedIndexInformer
	endpoints  cache.SharedIndexInformer
	services   cache.SharedIndexInformer
	pods       cache.SharedIndexInformer

	// watch is the informer of managed policies for the detected API; it
	// is only touched by the single pass goroutine.
	watch *policyWatch

	mu       gosync.Mutex
	cron     *cron.Cron
	cronID   cron.EntryID
	schedule string
	problems []string
	last     PassResult
	lastOf   map[string]PassResult

	// recent holds this replica's writes the informers have not seen yet.
	recent *recent
	// specs holds the canonical specs of managed policies; pass goroutine only.
	specs specs
}

// PassResult summarises the last pass.
type PassResult struct {
	// Seq counts the passes since the controller was made.
	Seq      uint64
	Kind     string
	API      calico.API
	Writes   map[string]int // by verb
	Duration time.Duration
	Err      error
}

type policyWatch struct {
	api      calico.API
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

// New builds a controller. Nothing runs until Start.
func New(o Options) (*Controller, error) {
	if o.Kube == nil || o.Dynamic == nil || o.Discovery == nil || o.Config == nil {
		return nil, errors.New("sync: Kube, Dynamic, Discovery and Config are required")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	c := &Controller{o: o, log: o.Logger, recent: newRecent(), specs: specs{}}
	c.cfg.Store(o.Config)

	c.namespaces = coreinformers.NewNamespaceInformer(o.Kube, 0, cache.Indexers{})
	c.nodes = coreinformers.NewNodeInformer(o.Kube, 0, cache.Indexers{})
	c.endpoints = discoveryinformers.NewFilteredEndpointSliceInformer(o.Kube, "default", 0, cache.Indexers{},
		func(lo *metav1.ListOptions) { lo.LabelSelector = kubernetesSliceSelector })
	c.services = coreinformers.NewServiceInformer(o.Kube, metav1.NamespaceAll, 0, cache.Indexers{})
	c.pods = coreinformers.NewPodInformer(o.Kube, metav1.NamespaceAll, 0, cache.Indexers{})
	for inf, trim := range map[cache.SharedIndexInformer]cache.TransformFunc{
		c.namespaces: trimNamespace, c.nodes: trimNode, c.services: trimService, c.pods: trimPod,
	} {
		if err := inf.SetTransform(trim); err != nil {
			return nil, err
		}
	}
	for _, inf := range []cache.SharedIndexInformer{c.namespaces, c.nodes, c.endpoints} {
		if _, err := inf.AddEventHandler(c.handler()); err != nil {
			return nil, err
		}
	}
	// Most Services and pods change nothing calico-pni writes: only those
	// reachable from outside, or with host ports, start a pass.
	if _, err := c.services.AddEventHandler(c.filtered(func(obj any) bool {
		svc, ok := obj.(*corev1.Service)
		return ok && isExternal(svc)
	})); err != nil {
		return nil, err
	}
	if _, err := c.pods.AddEventHandler(c.filtered(func(obj any) bool {
		pod, ok := obj.(*corev1.Pod)
		return ok && hasHostPorts(pod)
	})); err != nil {
		return nil, err
	}
	return c, nil
}

// filtered enqueues a pass when the object matters, before or after the
// change.
func (c *Controller) filtered(matters func(any) bool) cache.ResourceEventHandler {
	unwrap := func(obj any) any {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			return d.Obj
		}
		return obj
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if matters(obj) {
				c.enqueue(passKey)
			}
		},
		UpdateFunc: func(old, obj any) {
			if matters(old) || matters(obj) {
				c.enqueue(passKey)
			}
		},
		DeleteFunc: func(obj any) {
			if matters(unwrap(obj)) {
				c.enqueue(passKey)
			}
		},
	}
}

func (c *Controller) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{c.namespaces, c.nodes, c.endpoints, c.services, c.pods}
}

// handler only enqueues: every change of any watched object leads to one
// (debounced) pass over the whole desired state.
func (c *Controller) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueue(passKey) },
		UpdateFunc: func(any, any) { c.enqueue(passKey) },
		DeleteFunc: func(any) { c.enqueue(passKey) },
	}
}

func (c *Controller) enqueue(key string) {
	q := c.queue.Load()
	if q == nil {
		return
	}
	if key == passKey && c.o.Debounce > 0 {
		(*q).AddAfter(key, c.o.Debounce)
		return
	}
	(*q).Add(key)
}

// Start runs the informers and returns once their caches are filled.
func (c *Controller) Start(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, inf := range c.informers() {
		go inf.Run(ctx.Done())
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	c.synced.Store(true)
	c.log.Info("caches filled", "namespaces", len(c.namespaces.GetStore().ListKeys()), "nodes", len(c.nodes.GetStore().ListKeys()))
	return nil
}

// Synced reports whether the caches are filled.
func (c *Controller) Synced() bool { return c.synced.Load() }

// Ready reports whether a pass has completed since this replica started
// leading: the Calico API was found and every write was attempted.
func (c *Controller) Ready() bool { return c.ready.Load() }

// LastPass returns the summary of the last pass.
func (c *Controller) LastPass() PassResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// LastPassOf returns the summary of the last pass of a kind: "event" or
// "refresh".
func (c *Controller) LastPassOf(kind string) PassResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOf[kind]
}

// Refresh starts a pass that reads everything from the API server and
// detects the Calico API again, as the refresh schedule does.
func (c *Controller) Refresh() { c.enqueue(refreshKey) }

// Config returns the configuration in force.
func (c *Controller) Config() *config.Config { return c.cfg.Load() }

// SetConfig puts a new, already validated configuration in force and
// starts a refresh pass.
func (c *Controller) SetConfig(cfg *config.Config) {
	c.cfg.Store(cfg)
	c.o.Metrics.ConfigReloads.WithLabelValues("applied").Inc()
	c.log.Info("configuration applied")
	c.mu.Lock()
	if c.cron != nil {
		c.scheduleRefresh(cfg.KubeAPI.RefreshSchedule)
	}
	c.mu.Unlock()
	c.enqueue(refreshKey)
}

// RejectConfig reports a configuration that failed to load; the one in
// force stays.
func (c *Controller) RejectConfig(err error) {
	c.o.Metrics.ConfigReloads.WithLabelValues("rejected").Inc()
	c.o.Metrics.Errors.WithLabelValues("config").Inc()
	c.log.Error("configuration rejected; the previous one stays in force", "error", err)
	if c.o.Recorder != nil && c.o.Self != nil {
		c.o.Recorder.Eventf(c.o.Self, corev1.EventTypeWarning, "ConfigRejected",
			"the new configuration was rejected and the previous one stays in force: %v", err)
	}
}

// Lead reconciles until ctx ends: one pass at a time, after watch events
// (debounced), on the refresh schedule, and again with back-off after a
// pass that failed.
func (c *Controller) Lead(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "calico-pni"})
	c.queue.Store(&q)
	c.o.Metrics.Leader.Set(1)

	c.mu.Lock()
	c.cron = cron.New()
	c.scheduleRefresh(c.cfg.Load().KubeAPI.RefreshSchedule)
	c.cron.Start()
	c.mu.Unlock()

	defer func() {
		c.queue.Store(nil)
		q.ShutDown()
		c.mu.Lock()
		<-c.cron.Stop().Done()
		c.cron = nil
		c.mu.Unlock()
		c.stopWatch()
		c.ready.Store(false)
		c.o.Metrics.Leader.Set(0)
	}()
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()

	q.Add(refreshKey)
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		err := c.pass(ctx, key == refreshKey)
		if err != nil && ctx.Err() == nil {
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// scheduleRefresh (re)installs the cron entry; c.mu is held.
func (c *Controller) scheduleRefresh(schedule string) {
	if schedule == c.schedule && c.cronID != 0 {
		return
	}
	if c.cronID != 0 {
		c.cron.Remove(c.cronID)
	}
	id, err := c.cron.AddFunc(schedule, func() { c.enqueue(refreshKey) })
	if err != nil {
		// The configuration was validated; this cannot happen.
		c.log.Error("refresh schedule rejected", "schedule", schedule, "error", err)
		return
	}
	c.cronID, c.schedule = id, schedule
}

// ensureAPI detects the Calico API (again, on a refresh) and keeps an
// informer on the managed policies of that API.
func (c *Controller) ensureAPI(ctx context.Context, redetect bool) (*policyWatch, error) {
	if c.watch != nil && !redetect {
		return c.watch, nil
	}
	api, err := DetectAPI(ctx, c.o.Discovery, c.o.Dynamic, c.o.CalicoVersion)
	if err != nil {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		return nil, err
	}
	if c.watch != nil && c.watch.api == api {
		return c.watch, nil
	}
	c.stopWatch()
	watchCtx, stop := context.WithCancel(ctx)
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.o.Dynamic, 0, metav1.NamespaceAll,
		func(lo *metav1.ListOptions) { lo.LabelSelector = managedSelector })
	inf := factory.ForResource(api.Resource("GlobalNetworkPolicy")).Informer()
	if err := inf.SetTransform(trimManaged); err != nil {
		stop()
		return nil, err
	}
	if _, err := inf.AddEventHandler(c.handler()); err != nil {
		stop()
		return nil, err
	}
	go inf.Run(watchCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		stop()
		return nil, fmt.Errorf("waiting for the managed %s policies: %w", api.GroupVersion(), ctx.Err())
	}
	c.watch = &policyWatch{api: api, informer: inf, stop: stop}
	c.o.Metrics.setAPI(api)
	c.log.Info("writing Calico policies", "api", api.GroupVersion().String(), "calicoVersion", api.Version.String(), "example", api.StoredName("pni-deny-ingress"))
	return c.watch, nil
}

func (c *Controller) stopWatch() {
	if c.watch != nil {
		c.watch.stop()
		c.watch = nil
	}
}

// refreshFromServer replaces the nodes, the API endpoints and the managed
// policies of state with what the API server holds now.
func (c *Controller) refreshFromServer(ctx context.Context, api calico.API, state *clusterState) error {
	nodes, err := c.o.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	state.addNodes(pointers(nodes.Items))
	slices, err := c.o.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: kubernetesSliceSelector})
	if err != nil {
		return fmt.Errorf("listing the endpoints of default/kubernetes: %w", err)
	}
	state.snap.APIEndpoints = policies.APIEndpointsFrom(pointers(slices.Items))
	if state.policies, err = listManaged(ctx, c.o.Dynamic, api); err != nil {
		return err
	}
	return nil
}

// fromCaches builds the cluster state from the informers.
func (c *Controller) fromCaches(w *policyWatch) *clusterState {
	s := &clusterState{}
	s.addNamespaces(typed[corev1.Namespace](c.namespaces.GetStore().List()))
	s.addNodes(typed[corev1.Node](c.nodes.GetStore().List()))
	s.snap.APIEndpoints = policies.APIEndpointsFrom(typed[discoveryv1.EndpointSlice](c.endpoints.GetStore().List()))
	s.addServices(typed[corev1.Service](c.services.GetStore().List()))
	s.addPods(typed[corev1.Pod](c.pods.GetStore().List()))
	s.policies = typed[unstructured.Unstructured](w.informer.GetStore().List())
	return s
}

func typed[T any](items []any) []*T {
	out := make([]*T, 0, len(items))
	for _, item := range items {
		if t, ok := item.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}

// pass brings the cluster to the desired state once. The order of its
// steps is the safety argument of calico-pni:
//
//  1. create and update allow policies;
//  2. create and update baseline policies;
//  3. patch namespaces: switching isolation on only for namespaces whose
//     policies are all in place, and off for those that leave;
//  4. delete policies no longer wanted, baseline first, and only if every
//     earlier step succeeded.
//
// A namespace therefore never loses an allow it still needs, and is never
// isolated before its allows exist.
func (c *Controller) pass(ctx context.Context, refresh bool) (err error) {
	start := time.Now()
	kind := "event"
	if refresh {
		kind = "refresh"
	}
	result := PassResult{Kind: kind, Writes: map[string]int{}}
	defer func() {
		result.Duration, result.Err = time.Since(start), err
		outcome := "ok"
		if err != nil {
			outcome = "error"
			c.log.Error("pass failed; retrying with back-off", "kind", kind, "error", err)
		}
		c.o.Metrics.Passes.WithLabelValues(kind, outcome).Inc()
		c.o.Metrics.PassDuration.Observe(result.Duration.Seconds())
		c.mu.Lock()
		result.Seq = c.last.Seq + 1
		c.last = result
		if c.lastOf == nil {
			c.lastOf = map[string]PassResult{}
		}
		c.lastOf[kind] = result
		c.mu.Unlock()
	}()

	w, err := c.ensureAPI(ctx, refresh)
	if err != nil {
		c.ready.Store(false)
		return err
	}
	result.API = w.api
	state := c.fromCaches(w)
	if refresh {
		// A refresh re-reads from the API server what the schedule is
		// for: the nodes and the API endpoints behind the kube-api policy,
		// and calico-pni's own policies. Namespaces, Services and pods come
		// from the watch caches, which client-go re-lists by itself
		// whenever a watch breaks; re-listing ten thousand namespaces here
		// would only delay the passes that follow events.
		if err := c.refreshFromServer(ctx, w.api, state); err != nil {
			c.o.Metrics.Errors.WithLabelValues("list").Inc()
			return err
		}
	}
	c.recent.apply(state)
	state.snap.CalicoVersion = w.api.Version

	cfg := c.cfg.Load()
	desired := policies.Generate(state.snap, cfg)
	c.reportProblems(desired.Problems)

	wr := &writer{kube: c.o.Kube, dyn: c.o.Dynamic, api: w.api, dryRun: c.o.DryRun, workers: c.o.Workers, metrics: c.o.Metrics, log: c.log, recent: c.recent}
	c.specs.keep(state.policies)
	writes, deletes, upToDate := planPolicies(desired.Policies, w.api, state.policies, c.specs.canon)
	pr := newResults()
	for _, class := range []calico.Class{calico.ClassAllow, calico.ClassBaseline} {
		var step []policyChange
		for _, ch := range writes {
			if ch.class == class {
				step = append(step, ch)
				result.Writes[ch.verb]++
			}
		}
		wr.writePolicies(ctx, step, pr)
	}

	invalid := map[string]error{}
	for _, inv := range desired.Invalid {
		invalid[inv.Name] = inv.Err
	}
	inPlace := func(name string) (bool, string) {
		if upToDate[name] || pr.done[name] {
			return true, ""
		}
		if err, bad := invalid[name]; bad {
			return false, "invalid: " + err.Error()
		}
		if err, failed := pr.failed[name]; failed {
			return false, err.Error()
		}
		return false, "not written"
	}
	// Namespaces are planned and written a batch at a time, so that a
	// cold start of a large cluster never holds every patch at once.
	nr := newResults()
	firstPass := !c.ready.Load()
	states := map[policies.State]int{}
	for start := 0; start < len(desired.Namespaces); start += namespaceBatch {
		batch := desired.Namespaces[start:min(start+namespaceBatch, len(desired.Namespaces))]
		nsChanges, final := planNamespaces(batch, state.namespaces, inPlace)
		wr.patchNamespaces(ctx, nsChanges, nr)
		if len(nsChanges) > 0 {
			result.Writes[verbPatch] += len(nsChanges)
		}
		for _, ch := range nsChanges {
			if nr.done[ch.name] && !c.o.DryRun {
				c.recordNamespaceEvent(ch, firstPass)
			}
		}
		for _, f := range final {
			states[f.Status.State]++
		}
	}

	var errs []error
	for _, r := range []*results{pr, nr} {
		for _, name := range sortedKeys(r.failed) {
			errs = append(errs, r.failed[name])
		}
	}
	if len(errs) == 0 {
		dr := newResults()
		wr.deletePolicies(ctx, deletes, dr)
		if len(deletes) > 0 {
			result.Writes[verbDelete] += len(deletes)
		}
		for _, name := range sortedKeys(dr.failed) {
			errs = append(errs, dr.failed[name])
		}
	} else if len(deletes) > 0 {
		c.log.Info("deletes postponed until the writes before them succeed", "deletes", len(deletes))
	}

	c.o.Metrics.ManagedPolicies.Set(float64(len(desired.Policies)))
	c.o.Metrics.setNamespaces(states)
	if len(errs) > 0 {
		c.o.Metrics.Errors.WithLabelValues("write").Add(float64(len(errs)))
	}
	if ctx.Err() == nil {
		c.ready.Store(true)
	}
	total := 0
	for _, n := range result.Writes {
		total += n
	}
	if total > 0 || len(errs) > 0 {
		c.log.Info("pass done", "kind", kind, "writes", result.Writes, "errors", len(errs), "duration", time.Since(start).String())
	} else {
		c.log.Debug("pass done, nothing to write", "kind", kind, "duration", time.Since(start).String())
	}
	return errors.Join(errs...)
}

// reportProblems logs cluster-wide findings when they change.
func (c *Controller) reportProblems(problems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Equal(problems, c.problems) {
		return
	}
	c.problems = slices.Clone(problems)
	for _, p := range problems {
		c.log.Warn("cluster problem", "problem", p)
		if c.o.Recorder != nil && c.o.Self != nil {
			c.o.Recorder.Event(c.o.Self, corev1.EventTypeWarning, "ClusterProblem", p)
		}
	}
}

// recordNamespaceEvent records events on a namespace: when its state or
// project changes, when it has new problems, and when calico-pni puts back
// labels someone else changed. The first status a namespace ever gets is
// not announced during the first pass after taking the lead, so that
// installing calico-pni on a large cluster does not flood events; problems
// are always announced.
func (c *Controller) recordNamespaceEvent(ch namespaceChange, firstPass bool) {
	if c.o.Recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: ch.name}
	if len(ch.restored) > 0 {
		c.o.Recorder.Eventf(ref, corev1.EventTypeWarning, "LabelsRestored",
			"calico-pni labels %v were changed by someone other than calico-pni and have been put back; only calico-pni may set them", ch.restored)
	}
	var from policies.Status
	if ch.from != nil {
		from = *ch.from
	}
	to := ch.to
	for _, p := range to.Problems {
		if !slices.Contains(from.Problems, p) {
			c.o.Recorder.Event(ref, corev1.EventTypeWarning, "PolicyProblem", p)
		}
	}
	if ch.from == nil && firstPass {
		return
	}
	if from.State == to.State && from.Project == to.Project && from.Isolated == to.Isolated {
		return
	}
	was := "no status"
	if ch.from != nil {
		was = describe(from)
	}
	reason := map[policies.State]string{policies.Isolated: "Isolated", policies.Exempt: "Exempt", policies.Open: "Open", policies.Error: "PolicyProblem"}[to.State]
	c.o.Recorder.Eventf(ref, corev1.EventTypeNormal, reason, "calico-pni: %s (was %s): %s", describe(to), was, to.Reason)
}

func describe(s policies.Status) string {
	text := string(s.State)
	if s.Project != "" {
		text += " in project " + s.Project
	}
	return text
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
