package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// Options size one benchmark run.
type Options struct {
	Size synthetic.Size
	// Calico is the Calico version the API server claims ("3.28",
	// "3.30"): 3.29 and later serve tiers, 3.30 and later staged policies
	// (their CRDs as internal/testbed installs them).
	Calico string
	// Config is calico-pni's configuration (nil: the defaults). Its
	// refresh schedule is replaced, so that the steady state holds
	// several refreshes.
	Config *config.Config
	// UserPolicies is how many users' Kubernetes NetworkPolicies are
	// written before the daemon starts, so that every pass looks for
	// exposures.
	UserPolicies int
	// Moves is how many project moves are timed, one at a time; every
	// other one goes to a project that does not exist yet, so that a
	// project policy has to be written first.
	Moves int
	// Explains is how many `calico-pni explain --kubeconfig` runs are
	// timed once calico-pni's policies are in place.
	Explains int
	// NodeChanges is how many node address changes are timed.
	NodeChanges int
	// Promote is how many staged projects are promoted at once (Calico
	// 3.30 and later).
	Promote int
	// Steady is how long the cluster is left unchanged while refreshes
	// re-read everything from the API server.
	Steady time.Duration
	// Workers is the parallelism of the plain client.
	Workers int
	// DaemonArgs are extra flags for `calico-pni run`.
	DaemonArgs []string
	// DaemonEnv are KEY=VALUE settings added to the daemon's environment
	// only (GOMEMLIMIT, GOGC), not to the API server's or the bench's.
	DaemonEnv []string
	// Cleanup sizes the uninstall, as `calico-pni cleanup` flags do.
	Cleanup CleanupFlags
	// ProfileDir, when set, receives a CPU profile of the cold start and a
	// heap profile at the end (the daemon runs with --pprof).
	ProfileDir string
	Log        io.Writer
}

// Result is what one run measured.
type Result struct {
	Size                synthetic.Size
	API                 calico.API
	Mode                string // enforcement and rollout in force
	Writes              int    // writes the daemon's cold start made
	WritesByKind        map[string]int
	ColdStart           time.Duration
	PlainClient         time.Duration
	SteadyWrites        int
	SteadyRefreshes     int
	MoveLatencies       []time.Duration // to projects that exist
	NewMoveLatencies    []time.Duration // to projects that do not exist yet
	NodeLatencies       []time.Duration
	Explains            []ExplainRun // explain --kubeconfig, with the policies in place
	PeakRSS             int64        // bytes
	CPUSeconds          float64
	ColdStartCPUSeconds float64
	Policies            int
	Tier                bool // calico-pni's tier written too
	ProjectNamespaces   int
	RancherObjects      int // NetworkPolicies Rancher's own isolation writes
	UserPolicies        int
	ExposedNamespaces   int // namespaces whose status lists exposures after the cold start
	// Changes are the configuration changes at full scale, in order.
	Changes []Change
	// Cleanup is the uninstall; CleanupRemoved what it removed.
	Cleanup        Change
	CleanupRemoved cluster.CleanupResult
	steady         time.Duration
}

// Change is one timed change of the whole cluster.
type Change struct {
	What   string
	Took   time.Duration
	Writes int
}

// calicoOptions returns the test bed's CRDs and ClusterInformation for a
// Calico version given as "3.30" or "v3.30.3".
func calicoOptions(version string) (testbed.Options, error) {
	if version == "" {
		version = "3.28"
	}
	v, err := calico.ParseVersion(version)
	if err != nil {
		return testbed.Options{}, fmt.Errorf("-calico: %w", err)
	}
	full := "v" + strings.TrimPrefix(version, "v")
	if strings.Count(full, ".") == 1 {
		full += ".0"
	}
	return testbed.Options{CalicoV1: true, CalicoVersion: full, CalicoTiers: v.AtLeast(3, 29), CalicoStaged: v.AtLeast(3, 30)}, nil
}

// benchConfig is the configuration of a run: o.Config, refreshing often so
// that the steady-state window holds several full re-reads.
func benchConfig(o Options) *config.Config {
	cfg := config.Default()
	if o.Config != nil {
		cfg = cloneConfig(o.Config)
	}
	every := max(o.Steady/4, 2*time.Second)
	cfg.KubeAPI.RefreshSchedule = fmt.Sprintf("@every %s", every.Round(time.Second))
	return cfg
}

// bench is one run in progress.
type bench struct {
	o       Options
	env     *testbed.Env
	kube    kubernetes.Interface
	api     calico.API
	w       *watcher
	d       *daemon
	cluster *synthetic.Cluster
	logf    func(format string, args ...any)
}

// Run performs one benchmark run against an API server of its own.
func Run(ctx context.Context, o Options) (*Result, error) {
	b := &bench{o: o, logf: func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}}
	root, err := testbed.RepoRoot()
	if err != nil {
		return nil, err
	}
	binary := filepath.Join(root, "bin", "calico-pni")
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build`", binary)
	}
	tb, err := calicoOptions(o.Calico)
	if err != nil {
		return nil, err
	}
	if b.env, err = testbed.Start(tb); err != nil {
		return nil, err
	}
	defer b.env.Stop()
	fast := rest.CopyConfig(b.env.Config)
	fast.QPS, fast.Burst = -1, 0 // no client-side limit: as fast as the server takes it
	b.kube = kubernetes.NewForConfigOrDie(fast)
	dyn := dynamic.NewForConfigOrDie(fast)
	disc, err := discovery.NewDiscoveryClientForConfig(fast)
	if err != nil {
		return nil, err
	}
	// The API as the daemon detects it.
	if b.api, err = cluster.DetectAPI(ctx, disc, dyn, ""); err != nil {
		return nil, err
	}
	cfg := benchConfig(o)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	res := &Result{Size: o.Size, API: b.api, steady: o.Steady, UserPolicies: o.UserPolicies}
	b.cluster = synthetic.New(o.Size)
	b.logf("Calico %s; creating %d namespaces, %d nodes in %d projects, %d users' NetworkPolicies", b.api.Version, len(b.cluster.Namespaces), len(b.cluster.Nodes), o.Size.Projects, o.UserPolicies)
	if err := createCluster(ctx, b.kube, b.cluster, o.Workers); err != nil {
		return nil, err
	}
	if err := createUserPolicies(ctx, b.kube, b.cluster, o.UserPolicies, o.Workers); err != nil {
		return nil, err
	}
	desired, err := b.desired(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res.Mode = describeMode(cfg, desired)
	res.Policies, res.Tier = len(desired.Policies), desired.Tier != nil
	for _, ns := range desired.Namespaces {
		if ns.Status.Project != "" && ns.Status.Project != b.cluster.SystemProject {
			res.ProjectNamespaces++
		}
	}
	res.RancherObjects = 2 * res.ProjectNamespaces

	// The watcher runs during both timed phases, so that the server fans
	// out the same watch events to it in each.
	if b.w, err = newWatcher(ctx, b.env.Config, b.api); err != nil {
		return nil, err
	}
	defer b.w.stop()
	b.w.want(desired)

	b.logf("plain client: %d policies and %d namespace patches, %d at a time", len(desired.Policies), len(desired.Namespaces), o.Workers)
	if res.PlainClient, err = plainClient(ctx, b.kube, dyn, b.api, desired, o.Workers); err != nil {
		return nil, err
	}
	b.logf("plain client took %s", res.PlainClient.Round(time.Millisecond))

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
	d, err := startDaemon(binary, b.env, cfg, dir, logDir, args, o.DaemonEnv)
	if err != nil {
		return nil, err
	}
	b.d = d
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
	b.logf("daemon started (pid %d); waiting for every policy and status", d.cmd.Process.Pid)
	if err := b.w.waitComplete(ctx, 30*time.Minute, d.exited); err != nil {
		return nil, fmt.Errorf("%w; daemon log:\n%s", err, tail(d.log, 30))
	}
	res.ColdStart = time.Since(d.started)
	res.ColdStartCPUSeconds, _ = d.cpuSeconds()
	if o.ProfileDir != "" {
		if err := d.saveProfile(filepath.Join(o.ProfileDir, "coldstart.heap.pprof"), "/debug/pprof/heap", 0); err != nil {
			return nil, err
		}
	}
	b.logf("cold start took %s", res.ColdStart.Round(time.Millisecond))
	if err := d.waitReady(time.Minute); err != nil {
		return nil, err
	}
	// The exposures come with the statuses, in the same pass.
	res.ExposedNamespaces = b.w.exposedNamespaces()
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
	b.logf("steady state for %s", o.Steady)
	refreshesBefore := sumMetric(metrics, `calico_pni_passes_total{kind="refresh"`)
	select {
	case <-time.After(o.Steady):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
		b.logf("writes in the steady state; the daemon's log ends with:\n%s", tail(d.log, 40))
	}

	if o.ProfileDir != "" {
		go func() {
			profiles <- d.saveProfile(filepath.Join(o.ProfileDir, "reaction.cpu.pprof"), "/debug/pprof/profile?seconds=20", 20*time.Second)
		}()
	} else {
		profiles <- nil
	}
	if res.Explains, err = b.timeExplain(ctx, binary, o.Explains); err != nil {
		return nil, err
	}
	b.logf("timing %d project moves", o.Moves)
	if res.MoveLatencies, res.NewMoveLatencies, err = timeMoves(ctx, b.kube, b.w, b.cluster, o.Moves); err != nil {
		return nil, err
	}
	b.logf("timing %d node address changes", o.NodeChanges)
	if res.NodeLatencies, err = timeNodeChanges(ctx, b.kube, b.w, b.cluster, o.NodeChanges); err != nil {
		return nil, err
	}
	if err := <-profiles; err != nil {
		return nil, err
	}
	if res.Changes, err = b.configChanges(ctx, cfg); err != nil {
		return nil, err
	}
	res.PeakRSS, _ = d.peakRSS()
	res.CPUSeconds, _ = d.cpuSeconds()
	if o.ProfileDir != "" {
		if err := d.saveProfile(filepath.Join(o.ProfileDir, "end.heap.pprof"), "/debug/pprof/heap", 0); err != nil {
			return nil, err
		}
	}
	// The chart's uninstall hook stops the daemon before it cleans up.
	d.stop()
	b.logf("cleanup (%d write workers, %.0f QPS, burst %d, settle %s)", o.Cleanup.Workers, o.Cleanup.QPS, o.Cleanup.Burst, o.Cleanup.Settle)
	if res.Cleanup, res.CleanupRemoved, err = b.cleanup(ctx); err != nil {
		return nil, err
	}
	b.logf("cleanup took %s, %d writes", res.Cleanup.Took.Round(time.Millisecond), res.Cleanup.Writes)
	return res, nil
}

// desired is what the cluster on the server should hold under cfg, as
// `calico-pni render` computes it.
func (b *bench) desired(ctx context.Context, cfg *config.Config) (policies.Desired, error) {
	snap, err := cluster.ListSnapshot(ctx, b.kube)
	if err != nil {
		return policies.Desired{}, err
	}
	snap.CalicoVersion = b.api.Version
	d := policies.Generate(snap, cfg)
	if len(d.Invalid) > 0 {
		return d, fmt.Errorf("the configuration makes invalid policies: %s: %v", d.Invalid[0].Name, d.Invalid[0].Err)
	}
	return d, nil
}

func describeMode(cfg *config.Config, d policies.Desired) string {
	tier := "default tier"
	if d.Tier != nil {
		tier = "tier " + d.Tier.Name
	}
	staged := 0
	for _, p := range d.Policies {
		if p.Staged {
			staged++
		}
	}
	return fmt.Sprintf("enforcement %s (%s), rollout %s, %d staged policies", cfg.Enforcement, tier, cfg.Rollout, staged)
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
func timeMoves(ctx context.Context, kube kubernetes.Interface, w *watcher, c *synthetic.Cluster, moves int) (existing, created []time.Duration, err error) {
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
			return nil, nil, err
		}
		if live.Labels[policies.ProjectLabel] == target {
			continue
		}
		live.Labels["field.cattle.io/projectId"] = target
		live.Annotations["field.cattle.io/projectId"] = synthetic.ClusterID + ":" + target
		start := time.Now()
		if _, err := kube.CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{}); err != nil {
			return nil, nil, err
		}
		err = w.waitFor(ctx, time.Minute, func() bool {
			n := w.namespace(ns.Name)
			if n == nil || n.Labels[policies.ProjectLabel] != target {
				return false
			}
			st, err := policies.DecodeStatus(n.Annotations[policies.StatusAnnotation])
			return err == nil && st.Project == target && w.projectPolicy(st, target) != nil
		})
		if err != nil {
			n := w.namespace(ns.Name)
			return nil, nil, fmt.Errorf("move %d (%s to %s): %w; the namespace has labels %v and status %s; on the server: %v",
				i, ns.Name, target, err, n.Labels, n.Annotations[policies.StatusAnnotation], w.policy(policyNames("project-"+target)...) != nil)
		}
		if i%2 == 1 {
			created = append(created, time.Since(start))
		} else {
			existing = append(existing, time.Since(start))
		}
	}
	return existing, created, nil
}

// timeNodeChanges changes node addresses one at a time and measures how
// long until the kube-api policy holds the new address.
func timeNodeChanges(ctx context.Context, kube kubernetes.Interface, w *watcher, c *synthetic.Cluster, changes int) ([]time.Duration, error) {
	var out []time.Duration
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
			u := w.policy(policyNames("allow-kube-api")...)
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
