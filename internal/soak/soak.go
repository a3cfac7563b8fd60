package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/replay"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

// options are the soak's settings.
type options struct {
	Seed                        int64
	Ops                         int
	Namespaces, Projects, Nodes int
	CalicoVersion               string
	Verbose                     bool
	Keep                        bool
}

type logf func(format string, args ...any)

// The writers the audit log tells apart.
const (
	intruder = "soak-intruder"
	operator = "soak-operator"
	lease    = "calico-pni-soak"
)

var replicas = []string{"soak-a", "soak-b"}

// cleaner is the writer of `calico-pni cleanup`, run in the middle of
// the soak as the chart's uninstall hook runs it.
const cleaner = "soak-cleanup"

// calicoPNIWriters are the writers whose writes must keep the promise.
var calicoPNIWriters = append(slices.Clone(replicas), cleaner)

// soak is one run.
type soak struct {
	o      options
	log    logf
	r      *rand.Rand
	e      *testbed.Env
	dir    string
	binary string
	cfg    *config.Config

	// op and intruderKube write as the operator (Rancher, the admin) and
	// as the second writer.
	op, intr kubernetes.Interface
	intrDyn  dynamic.Interface
	disc     discovery.DiscoveryInterface

	procs     map[string]*process
	projects  []string
	created   []string // namespaces the soak created
	nextNS    int
	nextProj  int
	soakNodes []string
	nextNode  int

	// before is the state at the last quiet point; checks compare every
	// write after it with it and with the next quiet point. replayBefore
	// is the same state as the reference evaluator reads it, and mark the
	// audit log's position then.
	before       *state
	replayBefore *replay.State
	mark         int64
	system       string
	// current is the operation being applied; phase says what the
	// cluster's walls are at the quiet point being checked.
	current int
	phase   phase
	probes  *probes
	wire    *wireCheck
	rep     *report
	// explained is set once the writes of a failing operation are logged.
	explained bool
}

func run(o options, log logf) (rep *report, err error) {
	s := &soak{o: o, log: log, r: rand.New(rand.NewPCG(uint64(o.Seed), 42)), procs: map[string]*process{}, rep: newReport(o.Seed)}
	if s.dir, err = os.MkdirTemp("", "calico-pni-soak-"); err != nil {
		return nil, err
	}
	if o.Keep {
		log("keeping the replicas' logs in %s", s.dir)
	} else {
		defer os.RemoveAll(s.dir)
	}
	if err := s.setUp(); err != nil {
		s.tearDown()
		return s.rep, err
	}
	defer s.tearDown()
	start := time.Now()
	for i := 1; i <= o.Ops; i++ {
		if err := s.step(i); err != nil {
			s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d: %v (replay: -seed %d -ops %d)", i, err, o.Seed, i))
			s.dumpLogs()
			return s.rep, nil
		}
		if i%25 == 0 {
			log("%d/%d operations, %s", i, o.Ops, time.Since(start).Round(time.Second))
		}
	}
	s.rep.Duration = time.Since(start)
	return s.rep, nil
}

// setUp starts the API server, loads a synthetic cluster, builds the
// daemon and starts its two replicas, and waits for the first quiet point.
func (s *soak) setUp() error {
	v, err := calico.ParseVersion(s.o.CalicoVersion)
	if err != nil {
		return err
	}
	s.log("starting kube-apiserver and etcd (Calico %s)", s.o.CalicoVersion)
	s.e, err = testbed.Start(testbed.Options{CalicoV1: true, CalicoVersion: s.o.CalicoVersion, CalicoTiers: v.AtLeast(3, 29), CalicoStaged: v.AtLeast(3, 30)})
	if err != nil {
		return err
	}
	s.op = kubernetes.NewForConfigOrDie(testbed.As(s.e.Config, operator))
	s.intr = kubernetes.NewForConfigOrDie(testbed.As(s.e.Config, intruder))
	s.intrDyn = dynamic.NewForConfigOrDie(testbed.As(s.e.Config, intruder))
	s.disc = discovery.NewDiscoveryClientForConfigOrDie(s.e.Config)
	if err := s.loadCluster(); err != nil {
		return err
	}
	s.log("building calico-pni")
	root, err := testbed.RepoRoot()
	if err != nil {
		return err
	}
	s.binary = filepath.Join(s.dir, "calico-pni")
	build := exec.Command("go", "build", "-o", s.binary, "./cmd/calico-pni")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building calico-pni: %v\n%s", err, out)
	}
	s.cfg = config.Default()
	if err := s.writeConfig(); err != nil {
		return err
	}
	for _, name := range replicas {
		if err := s.startReplica(name); err != nil {
			return err
		}
	}
	s.wire = &wireCheck{lastDone: map[string]time.Time{}}
	if err := s.waitQuiet(); err != nil {
		return fmt.Errorf("the first quiet point: %w", err)
	}
	return s.quietPoint(0)
}

// quietPoint captures the state at a quiet point, checks both evaluators
// against the stated verdicts in it, and marks the audit log: the next
// operation's writes are judged from here.
func (s *soak) quietPoint(op int) error {
	var err error
	if s.mark, err = s.e.Wire().Mark(); err != nil {
		return err
	}
	if s.before, err = s.capture(); err != nil {
		return err
	}
	if s.replayBefore, err = s.captureReplay(); err != nil {
		return err
	}
	s.checkOracle(op, s.before, s.replayBefore)
	return nil
}

func (s *soak) tearDown() {
	for _, p := range s.procs {
		p.stop()
	}
	if s.e != nil {
		_ = s.e.Stop()
	}
}

// loadCluster creates the synthetic cluster's namespaces and nodes, and
// the endpoints of the Kubernetes API.
func (s *soak) loadCluster() error {
	ctx := context.Background()
	c := synthetic.New(synthetic.Size{Namespaces: s.o.Namespaces, Projects: s.o.Projects, Nodes: s.o.Nodes})
	s.projects = slices.Clone(c.Projects)
	s.system = c.SystemProject
	for _, ns := range c.Namespaces {
		if _, err := s.op.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			if ns.Name != "kube-system" {
				return err
			}
			live, err := s.op.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			live.Labels, live.Annotations = ns.Labels, ns.Annotations
			if _, err := s.op.CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
	}
	for _, n := range c.Nodes {
		if err := s.createNode(n); err != nil {
			return err
		}
	}
	port, proto, ready := int32(6443), corev1.ProtocolTCP, true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{synthetic.NodeAddress(0, 0)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("https"), Port: &port, Protocol: &proto}},
	}
	_, err := s.op.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
	return err
}

func (s *soak) createNode(n *corev1.Node) error {
	ctx := context.Background()
	status := n.Status
	created, err := s.op.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Status = status
	_, err = s.op.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func ptr[T any](v T) *T { return &v }

// writeConfig writes the configuration file the replicas poll.
func (s *soak) writeConfig() error {
	b, err := json.Marshal(s.cfg)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "config.yaml.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "config.yaml"))
}

// process is one replica.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (s *soak) startReplica(name string) error {
	kubeconfig, err := s.e.WriteKubeconfigAs(s.dir, name)
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p := &process{name: name, log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(s.binary, "run", "--kubeconfig", kubeconfig, "--config", filepath.Join(s.dir, "config.yaml"),
		"--config-poll", "100ms", "--http-address", "127.0.0.1:0", "--pod-name", name, "--pod-namespace", "default",
		"--leader-election-id", lease, "--lease-duration", "2s", "--renew-deadline", "1500ms", "--retry-period", "250ms",
		// A debounce of 1 s: the moves of one batch (written in
		// parallel) land in one pass even on a loaded machine.
		"--debounce", "1s", "--log-format", "text", "--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return err
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.procs[name] = p
	return nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// leader returns the replica that holds the lease ("" if none).
func (s *soak) leader() string {
	l, err := s.e.Kube.CoordinationV1().Leases("default").Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	name, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return name
}

// step applies one operation, waits for the next quiet point and checks
// every write in between.
func (s *soak) step(i int) error {
	op := s.pick()
	s.current = i
	started := time.Now()
	what, err := op.apply(s)
	if err != nil {
		return fmt.Errorf("%s: %w", op.name, err)
	}
	if s.o.Verbose {
		s.log("%d %s: %s", i, op.name, what)
	}
	s.rep.count(op)
	if err := s.waitQuiet(); err != nil {
		return fmt.Errorf("%s (%s): %w", op.name, what, err)
	}
	s.rep.Converge = append(s.rep.Converge, time.Since(started))
	return s.judge(i, op.name+" ("+what+")")
}

// judge checks the writes since the last quiet point, with both
// evaluators, and makes the state now the next quiet point.
func (s *soak) judge(i int, what string) error {
	writes, err := s.e.Wire().Writes(s.mark)
	if err != nil {
		return err
	}
	after, err := s.capture()
	if err != nil {
		return err
	}
	rafter, err := s.captureReplay()
	if err != nil {
		return err
	}
	s.checkWrites(i, what, writes, after)
	s.replayWrites(i, what, writes, rafter)
	return s.quietPoint(i)
}

// waitQuiet waits until the cluster holds what render computes for it,
// and keeps holding it for a moment (no write in flight).
func (s *soak) waitQuiet() error {
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = s.converged(); last == nil {
			m, err := s.e.Wire().Mark()
			if err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			if err := s.converged(); err == nil {
				if writes, _ := s.e.Wire().Writes(m); len(daemonWrites(writes)) == 0 {
					return nil
				}
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not converged after 90s: %w", last)
}

// dumpLogs prints the end of each replica's log after a failure. With
// -keep, each replica is first stopped with SIGQUIT, so its log ends with
// the stacks of all its goroutines: a pass that hangs shows where.
func (s *soak) dumpLogs() {
	for _, name := range replicas {
		p := s.procs[name]
		if p == nil {
			continue
		}
		if s.o.Keep {
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
			}
		}
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(string(b), "\n")
		s.log("last lines of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// stopReplicas stops both replicas, as the chart's uninstall hook scales
// the Deployment to zero before it cleans up.
func (s *soak) stopReplicas() {
	for _, name := range replicas {
		if p := s.procs[name]; p != nil {
			p.stop()
			delete(s.procs, name)
		}
	}
}

// runCleanup runs `calico-pni cleanup`; with killAfter >= 0 it kills the
// process with SIGKILL once that many of its writes are on the wire (or
// lets it finish if it makes fewer).
func (s *soak) runCleanup(killAfter int) error {
	kubeconfig, err := s.e.WriteKubeconfigAs(s.dir, cleaner)
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "cleanup.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(s.binary, "cleanup", "--kubeconfig", kubeconfig, "--timeout", "2m", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if killAfter >= 0 {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				return cleanupResult(err, logPath)
			case <-tick.C:
			}
			writes, err := s.e.Wire().Writes(s.mark)
			if err != nil {
				_ = cmd.Process.Kill()
				<-done
				return err
			}
			n := 0
			for _, w := range writes {
				if w.Writer == cleaner {
					n++
				}
			}
			if n >= killAfter {
				_ = cmd.Process.Kill()
				<-done
				return nil
			}
		}
	}
	return cleanupResult(<-done, logPath)
}

func cleanupResult(err error, logPath string) error {
	if err != nil {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("calico-pni cleanup: %v\n%s", err, b)
	}
	return nil
}

// afterCleanupHalf judges the writes of an interrupted cleanup: the
// cluster holds no walls at the end of a cleanup, but half way it holds
// some, so the next quiet point is the state the interruption left.
func (s *soak) afterCleanupHalf(what string) error {
	s.phase = halfway
	defer func() { s.phase = walls }()
	return s.judge(s.current, what)
}

// afterCleanup judges the cleanup's writes (end says whether it
// finished), and starts the replicas again: the step then waits for
// their cold start and judges it.
func (s *soak) afterCleanup(what string, end phase) error {
	s.phase = end
	err := s.judge(s.current, what)
	s.phase = walls
	if err != nil {
		return err
	}
	for _, name := range replicas {
		if err := s.startReplica(name); err != nil {
			return err
		}
	}
	return nil
}
