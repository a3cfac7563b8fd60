package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/lease"
	"github.com/calico-pni/calico-pni/metrics"
	"github.com/calico-pni/calico-pni/promotions"
)

// runFlags are the flags of `calico-pni run`.
type runFlags struct {
	kubeconfig    string
	configPath    string
	configPoll    time.Duration
	calicoVersion string
	dryRun        bool
	logLevel      string
	logFormat     string
	qps           float64
	burst         int
	workers       int
	debounce      time.Duration
	settle        time.Duration
	httpAddress   string
	leaderElect   bool
	leaseNS       string
	leaseName     string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	podName       string
	podNamespace  string
	pprof         bool
	promotions    string
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration, else $KUBECONFIG)")
	fs.StringVar(&f.configPath, "config", "", "configuration file (default: built-in defaults); reloaded on change and on SIGHUP")
	fs.DurationVar(&f.configPoll, "config-poll", 10*time.Second, "how often to look for a changed configuration file")
	fs.StringVar(&f.calicoVersion, "calico-version", "", "Calico version, overriding ClusterInformation (decides the names of v1 objects)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "log the writes a pass would make and make none")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.Float64Var(&f.qps, "kube-api-qps", 1000, "requests per second to the API server, sustained (at most --write-workers writes are in flight at once)")
	fs.IntVar(&f.burst, "kube-api-burst", 2000, "requests to the API server in a burst")
	fs.IntVar(&f.workers, "write-workers", 16, "writes made at once within one step of a pass")
	fs.DurationVar(&f.debounce, "debounce", 100*time.Millisecond, "how long a change waits for more changes before a pass")
	fs.DurationVar(&f.settle, "settle", cluster.DefaultSettle, "how long a step of a transition waits after writes of another kind it relies on, for Calico's dataplane to apply them (0: no wait)")
	fs.StringVar(&f.httpAddress, "http-address", ":8080", "address of /healthz, /readyz and /metrics")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader among replicas; only the leader writes")
	fs.StringVar(&f.leaseNS, "leader-election-namespace", "", "namespace of the leader Lease (default: --pod-namespace)")
	fs.StringVar(&f.leaseName, "leader-election-id", "calico-pni", "name of the leader Lease")
	fs.DurationVar(&f.leaseDuration, "lease-duration", 15*time.Second, "how long a leader's lease lasts without renewal")
	fs.DurationVar(&f.renewDeadline, "renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it steps down")
	fs.DurationVar(&f.retryPeriod, "retry-period", 2*time.Second, "how often replicas try to take or renew the lease")
	fs.StringVar(&f.podName, "pod-name", os.Getenv("POD_NAME"), "this Pod's name, for events and the leader identity (default $POD_NAME)")
	fs.StringVar(&f.podNamespace, "pod-namespace", os.Getenv("POD_NAMESPACE"), "this Pod's namespace (default $POD_NAMESPACE)")
	fs.StringVar(&f.promotions, "promotions-configmap", "", "name of the ConfigMap, in --pod-namespace, that records the staged projects the promotion gate enforced (projects.promote.automatic); the chart sets it. Empty: the gate only reports")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on --http-address, for diagnosing performance")
}

func newRunFlagSet(f *runFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f.register(fs)
	return fs
}

func runRun(args []string, _ io.Reader, _, stderr io.Writer) int {
	var f runFlags
	fs := newRunFlagSet(&f)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" run [flags]\n\nKeeps Calico policies and namespace status in step with Rancher projects.\nExit codes: 0 stopped by a signal, 1 failed (bad configuration, no API server), 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, prog+" run:", err)
		return exitUsage
	}
	// client-go logs through klog; send it to the same structured log.
	klog.SetSlogLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the configuration; catch it before anything else, so
	// that an early one never ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d, err := startDaemon(ctx, f, log)
	if err != nil {
		fmt.Fprintln(stderr, prog+" run:", err)
		return exitInvalid
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.reload()
			}
		}
	}()
	<-d.done
	log.Info("stopped")
	return exitOK
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: use json or text", format)
	}
	return slog.New(h), nil
}

// daemon is a running `calico-pni run`.
type daemon struct {
	f          runFlags
	log        *slog.Logger
	controller *controller.Controller
	metrics    *metrics.Metrics
	registry   *prometheus.Registry
	leading    atomic.Bool
	configHash atomic.Value // []byte: the file content in force
	http       *http.Server
	addr       string
	done       chan struct{}
	// lock is the leader Lease behind its write fence (nil without leader
	// election).
	lock *lease.Fence
	// polls counts the looks at the configuration file.
	polls atomic.Int64
}

// startDaemon checks the configuration, connects, fills the caches and
// starts serving, electing and reconciling in the background. It returns
// an error for anything that should stop the daemon at start: a bad
// configuration above all.
func startDaemon(ctx context.Context, f runFlags, log *slog.Logger) (*daemon, error) {
	content, cfg, err := readConfig(f.configPath)
	if err != nil {
		return nil, err
	}
	restCfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return nil, err
	}
	restCfg.QPS, restCfg.Burst = float32(f.qps), f.burst
	restCfg.UserAgent = "calico-pni/" + version
	// The lease is renewed through a client of its own; the controller's
	// writes pass through the lease fence.
	electionKube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	d := &daemon{f: f, log: log, registry: prometheus.NewRegistry(), done: make(chan struct{})}
	writes := restCfg
	if f.leaderElect {
		d.lock = lease.NewLock(leaseSettings(f), electionKube)
		if err := d.lock.UseWriteTransport(restCfg); err != nil {
			return nil, err
		}
		writes = rest.CopyConfig(restCfg)
		writes.Wrap(d.lock.Wrap)
	}
	kube, err := kubernetes.NewForConfig(writes)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(writes)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(writes)
	if err != nil {
		return nil, err
	}

	d.configHash.Store(content)
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = metrics.New(d.registry)

	recorder, self := eventRecorder(ctx, restCfg, f)
	d.controller, err = controller.New(controller.Options{
		Kube: kube, Dynamic: dyn, Discovery: disc, Config: cfg,
		CalicoVersion: f.calicoVersion, DryRun: f.dryRun, Workers: f.workers, Debounce: f.debounce, Settle: f.settle,
		Recorder: recorder, Self: self, Metrics: d.metrics, Logger: log,
		Promotions: promotionRecord(f, kube),
	})
	if err != nil {
		return nil, err
	}
	if err := d.serve(); err != nil {
		return nil, err
	}
	log.Info("starting", "version", version, "dryRun", f.dryRun, "leaderElect", f.leaderElect, "http", d.addr)
	if err := d.controller.Start(ctx); err != nil {
		return nil, errors.Join(err, d.http.Close())
	}
	go d.watchConfig(ctx)
	go func() {
		defer close(d.done)
		d.lead(ctx)
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.http.Shutdown(shutdown)
	}()
	return d, nil
}

// promotionRecord is the record of promoted projects the flags name, nil
// without one. Its writes pass through the lease fence like every other.
func promotionRecord(f runFlags, kube kubernetes.Interface) *promotions.Record {
	if f.promotions == "" {
		return nil
	}
	ns := f.podNamespace
	if ns == "" {
		ns = inClusterNamespace()
	}
	return &promotions.Record{Kube: kube, Namespace: ns, Name: f.promotions}
}

// eventRecorder records events with a client of its own, rate limited
// apart from the writes, so that events never slow reconciliation.
func eventRecorder(ctx context.Context, cfg *rest.Config, f runFlags) (record.EventRecorder, *corev1.ObjectReference) {
	events := rest.CopyConfig(cfg)
	events.QPS, events.Burst = 20, 50
	client, err := kubernetes.NewForConfig(events)
	if err != nil {
		return nil, nil
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "calico-pni"})
	var self *corev1.ObjectReference
	if f.podName != "" && f.podNamespace != "" {
		self = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: f.podName, Namespace: f.podNamespace}
	}
	return recorder, self
}

// serve starts /healthz, /readyz and /metrics.
func (d *daemon) serve() error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// The leader is ready after its first complete pass; a standby
		// once its caches are filled, so that it can take over at once.
		ready, what := d.controller.Synced(), "standby, caches filled"
		if d.leading.Load() {
			ready, what = d.controller.Ready(), "leader, first pass complete"
		}
		if !ready {
			http.Error(w, "not ready: waiting for "+what+"; see the logs", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok:", what)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	if d.f.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", d.f.httpAddress)
	if err != nil {
		return fmt.Errorf("--http-address: %w", err)
	}
	d.addr = ln.Addr().String()
	d.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// leaseSettings are the leader election's, from the flags.
func leaseSettings(f runFlags) lease.Settings {
	ns := f.leaseNS
	if ns == "" {
		ns = f.podNamespace
	}
	if ns == "" {
		ns = inClusterNamespace()
	}
	id := f.podName
	if id == "" {
		id, _ = os.Hostname()
	}
	return lease.Settings{Namespace: ns, Name: f.leaseName, Identity: id,
		LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod}
}

// lead reconciles while this replica leads, until ctx ends. Losing the
// lease stops the writes and the replica campaigns again.
func (d *daemon) lead(ctx context.Context) {
	run := func(lctx context.Context) {
		d.leading.Store(true)
		defer d.leading.Store(false)
		d.controller.Lead(lctx)
	}
	if !d.f.leaderElect {
		run(ctx)
		return
	}
	lease.Run(ctx, leaseSettings(d.f), d.lock, d.log, run)
}

func inClusterNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// readConfig reads and checks the configuration file.
func readConfig(path string) ([]byte, *config.Config, error) {
	if path == "" {
		return nil, config.Default(), nil
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(content)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	return content, cfg, nil
}

// watchConfig reloads the configuration file when its content changes.
// Polling the content, rather than watching the file, also sees the way a
// ConfigMap volume swaps a directory link under the file.
func (d *daemon) watchConfig(ctx context.Context) {
	if d.f.configPath == "" {
		return
	}
	t := time.NewTicker(d.f.configPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.polls.Add(1)
			content, err := os.ReadFile(d.f.configPath)
			if err == nil && bytes.Equal(content, d.configHash.Load().([]byte)) {
				continue
			}
			d.reload()
		}
	}
}

// reload loads the configuration file and applies it if it is valid;
// otherwise the one in force stays and an event says why.
func (d *daemon) reload() {
	if d.f.configPath == "" {
		return
	}
	content, cfg, err := readConfig(d.f.configPath)
	if err != nil {
		// Remember the bad content so that it is reported once.
		if b, readErr := os.ReadFile(d.f.configPath); readErr == nil {
			d.configHash.Store(b)
		}
		d.controller.RejectConfig(err)
		return
	}
	if bytes.Equal(content, d.configHash.Load().([]byte)) {
		d.log.Info("configuration unchanged")
		return
	}
	d.configHash.Store(content)
	d.controller.SetConfig(cfg)
}
