package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// Options size one benchmark run.
type Options struct {
	Size synthetic.Size
	// Moves is how many project moves are timed, one at a time; every
	// other one goes to a project that does not exist yet, so that a
	// project policy has to be written first.
	Moves int
	// NodeChanges is how many node address changes are timed.
	NodeChanges int
	// Steady is how long the cluster is left unchanged while refreshes
	// re-read everything from the API server.
	Steady time.Duration
	// Workers is the parallelism of the plain client.
	Workers int
	// DaemonArgs are extra flags for `calico-pni run`.
	DaemonArgs []string
	// ProfileDir, when set, receives a CPU profile of the cold start and a
	// heap profile at the end (the daemon runs with --pprof).
	ProfileDir string
	Log        io.Writer
}

// Result is what one run measured.
type Result struct {
	Size                synthetic.Size
	Writes              int // writes the daemon's cold start made
	WritesByKind        map[string]int
	ColdStart           time.Duration
	PlainClient         time.Duration
	SteadyWrites        int
	SteadyRefreshes     int
	MoveLatencies       []time.Duration
	NodeLatencies       []time.Duration
	PeakRSS             int64 // bytes
	CPUSeconds          float64
	ColdStartCPUSeconds float64
	Policies            int
	ProjectNamespaces   int
	RancherObjects      int // NetworkPolicies Rancher's own isolation writes
	steady              time.Duration
}

var api = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}

// benchConfig refreshes often, so that the steady-state window holds
// several full re-reads.
func benchConfig(steady time.Duration) *config.Config {
	cfg := config.Default()
	every := max(steady/4, 2*time.Second)
	cfg.KubeAPI.RefreshSchedule = fmt.Sprintf("@every %s", every.Round(time.Second))
	return cfg
}

// Run performs one benchmark run against an API server of its own.
func Run(ctx context.Context, o Options) (*Result, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	root, err := testbed.RepoRoot()
	if err != nil {
		return nil, err
	}
	binary := filepath.Join(root, "bin", "calico-pni")
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build`", binary)
	}
	env, err := testbed.Start(testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"})
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = -1, 0 // no client-side limit: as fast as the server takes it
	kube := kubernetes.NewForConfigOrDie(fast)
	dyn := dynamic.NewForConfigOrDie(fast)

	res := &Result{Size: o.Size, steady: o.Steady}
	cluster := synthetic.New(o.Size)
	logf("creating %d namespaces, %d nodes in %d projects", len(cluster.Namespaces), len(cluster.Nodes), o.Size.Projects)
	if err := createCluster(ctx, kube, cluster, o.Workers); err != nil {
		return nil, err
	}
	cfg := benchConfig(o.Steady)
	snap := cluster.Snapshot()
	snap.APIEndpoints = []policies.APIEndpoint{{Addr: netip.MustParseAddr(synthetic.NodeAddress(0, 0)), Port: 6443}}
	snap.CalicoVersion = api.Version
	desired := policies.Generate(snap, cfg)
	res.Policies = len(desired.Policies)
	for _, ns := range desired.Namespaces {
		if ns.Status.Project != "" && ns.Status.Project != cluster.SystemProject {
			res.ProjectNamespaces++
		}
	}
	res.RancherObjects = 2 * res.ProjectNamespaces

	// The watcher runs during both timed phases, so that the server fans
	// out the same watch events to it in each.
	w, err := newWatcher(ctx, env.Config, desired)
	if err != nil {
		return nil, err
	}
	defer w.stop()

	logf("plain client: %d policies and %d namespace patches, %d at a time", len(desired.Policies), len(desired.Namespaces), o.Workers)
	if res.PlainClient, err = plainClient(ctx, kube, dyn, desired, o.Workers); err != nil {
		return nil, err
	}
	logf("plain client took %s", res.PlainClient.Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "calico-pni-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := o.DaemonArgs
	if o.ProfileDir != "" {
		args = append(args, "--pprof")
	}
	logDir := dir
	if o.ProfileDir != "" {
		logDir = o.ProfileDir // kept, beside the profiles
	}
	d, err := startDaemon(binary, env, cfg, dir, logDir, args)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	profiles := make(chan error, 1)
	if o.ProfileDir != "" {
		// CPU profile of the cold start, from the moment /debug/pprof answers.
		go func() {
			profiles <- d.saveProfile(filepath.Join(o.ProfileDir, "coldstart.cpu.pprof"), "/debug/pprof/profile?seconds=15", 15*time.Second)
		}()
	} else {
		profiles <- nil
	}
	logf("daemon started (pid %d); waiting for every policy and status", d.cmd.Process.Pid)
	if err := w.waitComplete(ctx, 30*time.Minute, d.exited); err != nil {
		return nil, fmt.Errorf("%w; daemon log:\n%s", err, tail(d.log, 30))
	}
	res.ColdStart = time.Since(d.started)
	res.ColdStartCPUSeconds, _ = d.cpuSeconds()
	if o.ProfileDir != "" {
		if err := d.saveProfile(filepath.Join(o.ProfileDir, "coldstart.heap.pprof"), "/debug/pprof/heap", 0); err != nil {
			return nil, err
		}
	}
	logf("cold start took %s", res.ColdStart.Round(time.Millisecond))
	if err := d.waitReady(time.Minute); err != nil {
		return nil, err
	}
	metrics, err := d.metrics()
	if err != nil {
		return nil, err
	}
	res.WritesByKind = writesByKind(metrics)
	for _, n := range res.WritesByKind {
		res.Writes += n
	}

	if err := <-profiles; err != nil {
		return nil, err
	}
	logf("steady state for %s", o.Steady)
	refreshesBefore := sumMetric(metrics, `calico_pni_passes_total{kind="refresh"`)
	time.Sleep(o.Steady)
	after, err := d.metrics()
	if err != nil {
		return nil, err
	}
	for _, n := range writesByKind(after) {
		res.SteadyWrites += n
	}
	res.SteadyWrites -= res.Writes
	res.SteadyRefreshes = int(sumMetric(after, `calico_pni_passes_total{kind="refresh"`) - refreshesBefore)
	if res.SteadyWrites > 0 {
		logf("writes in the steady state; the daemon's log ends with:\n%s", tail(d.log, 40))
	}

	if o.ProfileDir != "" {
		go func() {
			profiles <- d.saveProfile(filepath.Join(o.ProfileDir, "reaction.cpu.pprof"), "/debug/pprof/profile?seconds=20", 20*time.Second)
		}()
	} else {
		profiles <- nil
	}
	logf("timing %d project moves", o.Moves)
	if res.MoveLatencies, err = timeMoves(ctx, kube, w, cluster, o.Moves); err != nil {
		return nil, err
	}
	logf("timing %d node address changes", o.NodeChanges)
	if res.NodeLatencies, err = timeNodeChanges(ctx, kube, w, cluster, o.NodeChanges); err != nil {
		return nil, err
	}
	if err := <-profiles; err != nil {
		return nil, err
	}
	res.PeakRSS, _ = d.peakRSS()
	res.CPUSeconds, _ = d.cpuSeconds()
	if o.ProfileDir != "" {
		if err := d.saveProfile(filepath.Join(o.ProfileDir, "end.heap.pprof"), "/debug/pprof/heap", 0); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// saveProfile fetches a profile from the daemon once it answers.
func (d *daemon) saveProfile(path, url string, duration time.Duration) error {
	deadline := time.Now().Add(time.Minute)
	for {
		code, body, err := d.get(url)
		if err == nil && code == http.StatusOK {
			return os.WriteFile(path, []byte(body), 0o644)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fetching %s: %v (status %d)", url, err, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

// plainClient makes the writes the daemon's cold start makes (every policy
// created, every namespace patched with labels and status of the same
// size), in parallel and without any client-side limit, under names and
// keys the daemon does not read; then removes them (not timed).
func plainClient(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, d policies.Desired, workers int) (time.Duration, error) {
	gnp := dyn.Resource(api.Resource("GlobalNetworkPolicy"))
	objects := make([]*unstructured.Unstructured, len(d.Policies))
	for i, p := range d.Policies {
		u := api.Object(p)
		u.SetName("plain-" + u.GetName())
		u.SetLabels(map[string]string{"bench": "plain-client"})
		objects[i] = u
	}
	patches := make([][]byte, len(d.Namespaces))
	for i, ns := range d.Namespaces {
		labels := map[string]string{}
		for k, v := range ns.Labels {
			labels["bench-"+k] = v
		}
		patches[i], _ = json.Marshal(map[string]any{"metadata": map[string]any{
			"labels":      labels,
			"annotations": map[string]string{"bench-" + policies.StatusAnnotation: ns.Status.Encode()},
		}})
	}
	start := time.Now()
	err := parallel(workers, len(objects), func(i int) error {
		_, err := gnp.Create(ctx, objects[i], metav1.CreateOptions{})
		return err
	})
	if err == nil {
		err = parallel(workers, len(patches), func(i int) error {
			_, err := kube.CoreV1().Namespaces().Patch(ctx, d.Namespaces[i].Name, types.MergePatchType, patches[i], metav1.PatchOptions{})
			return err
		})
	}
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("plain client: %w", err)
	}
	// Undo, untimed.
	if err := gnp.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=plain-client"}); err != nil {
		return 0, err
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

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error.
func parallel(workers, n int, fn func(int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg gosync.WaitGroup
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

// watcher follows the namespaces and policies on the server, to see when
// the daemon's writes have landed without asking it.
type watcher struct {
	namespaces cache.SharedIndexInformer
	policies   cache.SharedIndexInformer
	cancel     context.CancelFunc

	mu         gosync.Mutex
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

// timeMoves moves namespaces between projects one at a time, as Rancher
// does (annotation and label in one update), and measures how long until
// the namespace carries the new project's label and status and, for a new
// project, its policy exists.
func timeMoves(ctx context.Context, kube kubernetes.Interface, w *watcher, c *synthetic.Cluster, moves int) ([]time.Duration, error) {
	var out []time.Duration
	users := c.Namespaces[4:] // after the System namespaces
	for i := range moves {
		ns := users[(i*7919)%len(users)]
		target := c.Projects[(i*31+1)%len(c.Projects)]
		if i%2 == 1 {
			target = fmt.Sprintf("p-new%02d", i%100)
			if i >= 200 {
				target = fmt.Sprintf("p-n%03d", i%1000)
			}
		}
		live, err := kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if live.Labels[policies.ProjectLabel] == target {
			continue
		}
		live.Labels["field.cattle.io/projectId"] = target
		live.Annotations["field.cattle.io/projectId"] = synthetic.ClusterID + ":" + target
		start := time.Now()
		if _, err := kube.CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
		stored := api.StoredName("pni-project-" + target)
		err = w.waitFor(ctx, time.Minute, func() bool {
			n := w.namespace(ns.Name)
			if n == nil || n.Labels[policies.ProjectLabel] != target {
				return false
			}
			st, err := policies.DecodeStatus(n.Annotations[policies.StatusAnnotation])
			return err == nil && st.Project == target && w.policy(stored) != nil
		})
		if err != nil {
			return nil, fmt.Errorf("move %d (%s to %s): %w", i, ns.Name, target, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// timeNodeChanges changes node addresses one at a time and measures how
// long until the kube-api policy holds the new address.
func timeNodeChanges(ctx context.Context, kube kubernetes.Interface, w *watcher, c *synthetic.Cluster, changes int) ([]time.Duration, error) {
	var out []time.Duration
	stored := api.StoredName("pni-allow-kube-api")
	for i := range changes {
		idx := i % len(c.Nodes)
		node, err := kube.CoreV1().Nodes().Get(ctx, c.Nodes[idx].Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		addr := synthetic.NodeAddress(idx, 100+i)
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
		start := time.Now()
		if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
		want := addr + "/32"
		err = w.waitFor(ctx, time.Minute, func() bool {
			u := w.policy(stored)
			if u == nil {
				return false
			}
			spec, err := calico.SpecOf(u)
			if err != nil {
				return false
			}
			for _, r := range spec.Egress {
				if slices.Contains(r.Destination.Nets, want) {
					return true
				}
			}
			return false
		})
		if err != nil {
			return nil, fmt.Errorf("node change %d: %w", i, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// daemon is calico-pni run as a child process.
type daemon struct {
	cmd     *exec.Cmd
	port    int
	log     string
	started time.Time
	exited  chan struct{}
}

func startDaemon(binary string, env *testbed.Env, cfg *config.Config, dir, logDir string, extra []string) (*daemon, error) {
	kubeconfig, err := env.WriteKubeconfig(dir)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := &daemon{port: port, log: filepath.Join(logDir, "daemon.log")}
	logFile, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "--kubeconfig", kubeconfig, "--config", cfgPath, "--leader-elect=false",
		"--http-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn"}, extra...)
	d.cmd = exec.Command(binary, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.exited = make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
}

func (d *daemon) get(path string) (int, string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (d *daemon) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if code, _, err := d.get("/readyz"); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the daemon did not become ready")
}

func (d *daemon) metrics() (string, error) {
	_, body, err := d.get("/metrics")
	return body, err
}

// writesByKind sums calico_pni_writes_total by "verb kind".
func writesByKind(metrics string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "calico_pni_writes_total{") {
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimPrefix(line, "calico_pni_writes_total{"), "} ")
		n, _ := strconv.ParseFloat(value, 64)
		if n == 0 {
			continue
		}
		var kind, verb string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			if k == "kind" {
				kind = v
			} else if k == "verb" {
				verb = v
			}
		}
		out[verb+" "+kind] += int(n)
	}
	return out
}

func sumMetric(metrics, prefix string) float64 {
	total := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, prefix) {
			_, value, _ := strings.Cut(line, "} ")
			n, _ := strconv.ParseFloat(value, 64)
			total += n
		}
	}
	return total
}

// peakRSS reads the daemon's high-water resident set (VmHWM) from /proc.
func (d *daemon) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// cpuSeconds reads the daemon's user and system CPU time from /proc.
func (d *daemon) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name in parentheses; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // clock ticks: 100 per second on Linux
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// percentile returns the p-th percentile (nearest rank) of durations.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(rank, 0)]
}
