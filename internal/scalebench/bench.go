package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
