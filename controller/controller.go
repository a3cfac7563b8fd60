package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/promotions"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/metrics"
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
	// Settle is how long a step of a transition waits after the writes of
	// another kind it relies on, for Calico's dataplane to apply them
	// (DefaultSettle; 0 waits not at all).
	Settle time.Duration
	// Recorder records events on namespaces and on Self; nil records none.
	Recorder record.EventRecorder
	// Self is the object events about calico-pni itself are recorded on
	// (its Pod); nil records none.
	Self    *corev1.ObjectReference
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Evidence is the reading of Calico's flow logs (nil: not read; see
	// SetEvidence).
	Evidence *Evidence
	// Promotions is the record of the projects the promotion gate
	// enforced (nil: none is read or written).
	Promotions *promotions.Record
	// EvidenceRefresh is how often pending denies are summarised into the
	// staged namespaces' status, the gate is run and predictions are
	// compared (DefaultEvidenceRefresh); EvidencePoll how often the
	// evidence's availability is looked at (DefaultEvidencePoll).
	EvidenceRefresh, EvidencePoll time.Duration
	// FlowBackoff spaces the flow-log client's reconnections (zero:
	// flows.DefaultBackoff).
	FlowBackoff flows.Backoff
	// GateClock is the time the promotion gate decides at (default
	// time.Now); tests move it to pass a project's quiet time.
	GateClock func() time.Time
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
	// networkPolicies are the users' Kubernetes NetworkPolicies.
	networkPolicies cache.SharedIndexInformer

	// watch is the informer of managed policies for the detected API; it
	// is only touched by the single pass goroutine.
	watch *policyWatch

	// term is held while this replica leads (Lead).
	term sync.Mutex

	mu       sync.Mutex
	cron     *cron.Cron
	cronID   cron.EntryID
	schedule string
	problems []string
	// rancherNamespaces is what the last pass counted of Rancher's
	// isolation (reportRancher).
	rancherNamespaces int
	last              PassResult
	lastOf            map[string]PassResult

	// recent holds this replica's writes the informers have not seen yet.
	recent *recent
	// specs holds the canonical specs of managed policies; pass goroutine only.
	specs plan.Specs
	// lastFailed holds the writes that failed in the last pass, by policy
	// or namespace name; pass goroutine only.
	lastFailed map[string]error
	// settle remembers when writes of each effect last completed.
	settle cluster.SettleClock
	// passesStarted counts the passes begun.
	passesStarted atomic.Uint64
	// brokenWatches counts the watches that broke; trustedBreaks is its
	// value when the caches last agreed with the API server (doubt.go).
	brokenWatches, trustedBreaks atomic.Uint64
	// models holds the users' policies as the evaluator reads them, by
	// object; pass goroutine only (exposures.go).
	models map[string]model

	// evidence is the flow-log reading in force, view the summary of its
	// pending denies the passes put in statuses (nil until it settles),
	// loop the state of the evidence loop (evidence.go).
	evidence atomic.Pointer[Evidence]
	reader   flowReader
	view     atomic.Pointer[pendingView]
	loop     evidenceLoop
	// prediction is what the last pass read of the policies, for
	// comparing predictions with observed flows (predict.go).
	prediction atomic.Pointer[predictionInput]
	// calicoVersion is the Calico version the last pass found.
	calicoVersion atomic.Value
	// promoted holds the record of promoted projects (nil until a pass
	// of this term read it), guarded by promoteMu (promote.go).
	promoteMu sync.Mutex
	promoted  map[string]promotions.Promotion
}

// PassResult summarises the last pass.
type PassResult struct {
	// Seq counts the passes finished since the controller was made.
	Seq uint64
	// Started is the number of the pass among those begun: a pass with
	// Started greater than PassesStarted() read before a change began
	// after it.
	Started  uint64
	Kind     string
	API      calico.API
	Writes   map[string]int // by verb
	Duration time.Duration
	// Settled is how long the pass waited for the dataplane between steps.
	Settled time.Duration
	Err     error
}

// policyWatch is an informer on each kind of Calico object calico-pni
// reads through the detected API: the policies it writes, and the users'
// Calico policies and tiers, for the exposures. GlobalNetworkPolicies are
// watched whole (calico-pni's and the users'), the staged ones calico-pni
// writes by its label.
type policyWatch struct {
	api       calico.API
	informers map[string]cache.SharedIndexInformer
	stop      context.CancelFunc
}

// watchedKinds lists what a policyWatch watches, and whether only
// calico-pni's objects.
func watchedKinds(api calico.API) map[string]bool {
	kinds := map[string]bool{"GlobalNetworkPolicy": false, "NetworkPolicy": false}
	if api.Staged {
		kinds["StagedGlobalNetworkPolicy"] = true
	}
	if api.Tiers {
		kinds["Tier"] = false
	}
	return kinds
}

// objects returns the objects of a kind in the caches, each with its
// kind set.
func (w *policyWatch) objects(kind string) []*unstructured.Unstructured {
	inf := w.informers[kind]
	if inf == nil {
		return nil
	}
	var out []*unstructured.Unstructured
	for _, u := range typed[unstructured.Unstructured](inf.GetStore().List()) {
		if u.GetKind() == "" {
			u = u.DeepCopy()
			u.SetKind(kind)
		}
		out = append(out, u)
	}
	return out
}

// managed returns the policies calico-pni manages, from the caches.
func (w *policyWatch) managed() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, kind := range w.api.PolicyKinds() {
		for _, u := range w.objects(kind) {
			if u.GetLabels()[calico.ManagedByLabel] == calico.ManagedByValue {
				out = append(out, u)
			}
		}
	}
	return out
}

// New builds a controller. Nothing runs until Start.
func New(o Options) (*Controller, error) {
	if o.Kube == nil || o.Dynamic == nil || o.Discovery == nil || o.Config == nil {
		return nil, errors.New("sync: Kube, Dynamic, Discovery and Config are required")
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.EvidenceRefresh <= 0 {
		o.EvidenceRefresh = DefaultEvidenceRefresh
	}
	if o.EvidencePoll <= 0 {
		o.EvidencePoll = DefaultEvidencePoll
	}
	if o.GateClock == nil {
		o.GateClock = time.Now
	}
	c := &Controller{o: o, log: o.Logger, recent: newRecent(), specs: plan.Specs{}}
	c.cfg.Store(o.Config)
	c.evidence.Store(o.Evidence)

	c.namespaces = coreinformers.NewNamespaceInformer(o.Kube, 0, cache.Indexers{})
	c.nodes = coreinformers.NewNodeInformer(o.Kube, 0, cache.Indexers{})
	c.endpoints = discoveryinformers.NewFilteredEndpointSliceInformer(o.Kube, "default", 0, cache.Indexers{},
		func(lo *metav1.ListOptions) { lo.LabelSelector = cluster.KubernetesSliceSelector })
	c.services = coreinformers.NewServiceInformer(o.Kube, metav1.NamespaceAll, 0, cache.Indexers{})
	c.pods = coreinformers.NewPodInformer(o.Kube, metav1.NamespaceAll, 0, cache.Indexers{})
	// Users' Kubernetes NetworkPolicies: read for the exposures only.
	c.networkPolicies = networkinginformers.NewNetworkPolicyInformer(o.Kube, metav1.NamespaceAll, 0, cache.Indexers{})
	for inf, trim := range map[cache.SharedIndexInformer]cache.TransformFunc{
		c.namespaces: cluster.TrimNamespace, c.nodes: cluster.TrimNode, c.services: cluster.TrimService, c.pods: cluster.TrimPod, c.networkPolicies: cluster.TrimManagedFields,
	} {
		if err := inf.SetTransform(trim); err != nil {
			return nil, err
		}
	}
	for _, inf := range c.informers() {
		if err := inf.SetWatchErrorHandlerWithContext(c.watchBroken); err != nil {
			return nil, err
		}
	}
	for _, inf := range []cache.SharedIndexInformer{c.namespaces, c.nodes, c.endpoints, c.networkPolicies} {
		if _, err := inf.AddEventHandler(c.handler()); err != nil {
			return nil, err
		}
	}
	// Most Services and pods change nothing calico-pni writes: only those
	// reachable from outside, or with host ports, start a pass.
	if _, err := c.services.AddEventHandler(c.filtered(func(obj any) bool {
		svc, ok := obj.(*corev1.Service)
		return ok && cluster.IsExternal(svc)
	})); err != nil {
		return nil, err
	}
	if _, err := c.pods.AddEventHandler(c.filtered(func(obj any) bool {
		pod, ok := obj.(*corev1.Pod)
		return ok && cluster.HasHostPorts(pod)
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
	return []cache.SharedIndexInformer{c.namespaces, c.nodes, c.endpoints, c.services, c.pods, c.networkPolicies}
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
	c.startReadingFlows(ctx)
	go c.watchEvidence(ctx)
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

// PassesStarted returns how many passes have begun.
func (c *Controller) PassesStarted() uint64 { return c.passesStarted.Load() }

// LastPassOf returns the summary of the last pass of a kind: "event" or
// "refresh".
func (c *Controller) LastPassOf(kind string) PassResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOf[kind]
}

// RefreshSchedule returns the refresh schedule in force and when it next
// fires (zero when this replica does not lead).
func (c *Controller) RefreshSchedule() (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cron == nil || c.cronID == 0 {
		return c.schedule, time.Time{}
	}
	return c.schedule, c.cron.Entry(c.cronID).Next
}

// Refresh starts a pass that reads everything from the API server and
// detects the Calico API again, as the refresh schedule does.
func (c *Controller) Refresh() { c.enqueue(refreshKey) }

// Config returns the configuration in force.
func (c *Controller) Config() *config.Config { return c.cfg.Load() }

// SetConfig puts a new, already validated configuration in force and
// starts a refresh pass.
func (c *Controller) SetConfig(cfg *config.Config) {
	old := c.cfg.Swap(cfg)
	if old != nil && stagingOf(old) != stagingOf(cfg) && (old.IsolateEgress != cfg.IsolateEgress || old.Enforcement != cfg.Enforcement || old.Tier != cfg.Tier) {
		// docs/design.md bounds this case: two transitions in one.
		c.log.Warn("the new configuration changes the staging of projects together with isolateEgress or the tier: for the passes that make both changes, connections between staged and enforced projects may briefly be denied or allowed although neither configuration does; change one of them at a time")
	}
	c.o.Metrics.ConfigReloads.WithLabelValues("applied").Inc()
	c.log.Info("configuration applied")
	c.mu.Lock()
	if c.cron != nil {
		c.scheduleRefresh(cfg.KubeAPI.RefreshSchedule)
	}
	c.mu.Unlock()
	c.readFlows(cfg)
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
//
// Terms never overlap: a Lead called while another is still returning
// (client-go's leader election does not wait for the last term to end
// before it campaigns again) waits for it, then leads unless ctx has ended
// meanwhile.
func (c *Controller) Lead(ctx context.Context) {
	c.term.Lock()
	defer c.term.Unlock()
	if ctx.Err() != nil {
		return
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "calico-pni"})
	c.queue.Store(&q)
	c.o.Metrics.Leader.Set(1)
	c.newTerm()

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
	api, err := cluster.DetectAPI(ctx, c.o.Discovery, c.o.Dynamic, c.o.CalicoVersion)
	if err != nil {
		c.o.Metrics.Errors.WithLabelValues("detect").Inc()
		return nil, err
	}
	if c.watch != nil && c.watch.api == api {
		return c.watch, nil
	}
	c.stopWatch()
	watchCtx, stop := context.WithCancel(ctx)
	all := dynamicinformer.NewDynamicSharedInformerFactory(c.o.Dynamic, 0)
	ours := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.o.Dynamic, 0, metav1.NamespaceAll,
		func(lo *metav1.ListOptions) { lo.LabelSelector = cluster.ManagedSelector })
	w := &policyWatch{api: api, informers: map[string]cache.SharedIndexInformer{}, stop: stop}
	var synced []cache.InformerSynced
	for kind, onlyOurs := range watchedKinds(api) {
		factory := all
		if onlyOurs {
			factory = ours
		}
		inf := factory.ForResource(api.Resource(kind)).Informer()
		if err := inf.SetTransform(cluster.TrimManaged); err != nil {
			stop()
			return nil, err
		}
		if err := inf.SetWatchErrorHandlerWithContext(c.watchBroken); err != nil {
			stop()
			return nil, err
		}
		if _, err := inf.AddEventHandler(c.handler()); err != nil {
			stop()
			return nil, err
		}
		w.informers[kind] = inf
		synced = append(synced, inf.HasSynced)
	}
	all.Start(watchCtx.Done())
	ours.Start(watchCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		stop()
		return nil, fmt.Errorf("waiting for the managed %s policies: %w", api.GroupVersion(), ctx.Err())
	}
	c.watch = w
	c.o.Metrics.SetAPI(api)
	c.log.Info("writing Calico policies", "api", api.GroupVersion().String(), "calicoVersion", api.Version.String(), "example", api.StoredName("pni-deny-ingress"))
	return c.watch, nil
}

func (c *Controller) stopWatch() {
	if c.watch != nil {
		c.watch.stop()
		c.watch = nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stagingOf says which projects a configuration stages or enforces.
func stagingOf(cfg *config.Config) string {
	return fmt.Sprint(cfg.Rollout, cfg.Projects.Stage, cfg.Projects.Enforce)
}
