package controller_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/internal/replay"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

// The tests in this file prove calico-pni's promise on the wire: for each
// transition they read the writes the API server committed (its audit
// log), rebuild the cluster after each one and evaluate every connection
// of the article fixture's pods in every state, with the reference
// evaluator of internal/replay, which shares no code with calico-pni's. A
// connection that both the state before and the state after a transition
// allow must be allowed in every state between, and one both deny denied.
// Before that, the reference evaluator's verdicts in the end states are
// checked against verdicts the tests state (expect), from the fixture and
// docs/policies.md, so that a bug the generator and the reference shared
// would still show.

// noGapVersions are the Calico versions of the wire tests: 3.28 puts
// calico-pni's policies in the default tier, 3.30 in calico-pni's own tier
// (enforcement auto).
var noGapVersions = []string{"v3.28.5", "v3.30.1"}

// noGapEnv starts an API server for a Calico version with the article
// fixture, or with the workloads files given (each holding a whole
// cluster).
func noGapEnv(t *testing.T, version string, workloads ...string) (*testbed.Env, calico.API) {
	t.Helper()
	v, err := calico.ParseVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	opts := testbed.Options{CalicoV1: true, CalicoVersion: version, CalicoTiers: v.AtLeast(3, 29), CalicoStaged: v.AtLeast(3, 30)}
	e, err := testbed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	for _, path := range workloads {
		if err := e.LoadWorkloads(context.Background(), path); err != nil {
			t.Fatal(err)
		}
	}
	if len(workloads) == 0 {
		if err := e.LoadCluster(context.Background(), filepath.Join("..", "testdata", "article-cluster.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	return e, calico.API{Group: calico.GroupV1, Version: v, Tiers: opts.CalicoTiers, Staged: opts.CalicoStaged}
}

// transitions replays the wire of each transition a test makes and keeps
// the figures.
type transitions struct {
	t      *testing.T
	e      *testbed.Env
	probes *replay.Probes
	rows   []string
}

func newTransitions(t *testing.T, e *testbed.Env) *transitions {
	t.Helper()
	probes, err := replay.ClusterProbes(filepath.Join("..", "testdata", "article-cluster.yaml"), filepath.Join("..", "testdata", "article-workloads.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &transitions{t: t, e: e, probes: probes}
	t.Cleanup(func() {
		t.Logf("transition | writes | states | verdicts checked | gaps\n%s", strings.Join(tr.rows, "\n"))
	})
	return tr
}

// expectation is a verdict a test states for the end of a transition.
type expectation struct {
	src, dst string
	port     uint16
	allowed  bool
	why      string
}

// check makes a transition (do, then until done holds) and checks every
// state the API server passed through. Then it checks the end state
// against the stated verdicts.
func (tr *transitions) check(name string, do func(), done func() error, expect ...expectation) {
	t := tr.t
	t.Helper()
	ctx := context.Background()
	start, err := replay.Capture(ctx, tr.e.Dynamic)
	if err != nil {
		t.Fatal(err)
	}
	m := mark(t, tr.e)
	do()
	testbed.Eventually(t, wait, done)
	writes, err := tr.e.Wire().Writes(m)
	if err != nil {
		t.Fatal(err)
	}
	rep := replay.Check(start, writes, tr.probes)
	tr.rows = append(tr.rows, fmt.Sprintf("%s | %d | %d | %d | %d", name, rep.Writes, rep.States, rep.Verdicts, len(rep.Gaps)))
	if len(rep.Gaps) > 0 || len(rep.Errors) > 0 {
		t.Errorf("%s: %s", name, rep)
		rep.Fail(t)
	}
	// The replay must end where the server is.
	end, err := replay.Capture(ctx, tr.e.Dynamic)
	if err != nil {
		t.Fatal(err)
	}
	commits, err := replay.Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	replayed := start.Clone()
	for _, w := range commits.Writes {
		if err := replayed.Apply(w); err != nil {
			t.Fatalf("%s: replaying %s: %v", name, w, err)
		}
	}
	if d := replay.Diff(replayed, end); len(d) > 0 {
		t.Errorf("%s: the replayed writes do not end where the server is:\n%s", name, strings.Join(d, "\n"))
	}
	ix := replay.NewIndex(end)
	for _, x := range expect {
		c, err := tr.probes.Conn(x.src, x.dst, "TCP", x.port)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ix.Evaluate(c)
		if err != nil {
			t.Fatal(err)
		}
		if (d.Verdict == replay.Allowed) != x.allowed {
			t.Errorf("%s: %s is %s, want allowed=%v: %s", name, c, d, x.allowed, x.why)
		}
	}
}

// updateNamespaces moves namespaces to projects ("" for none), as Rancher
// does, all at once, so that one pass sees them all: the writes are
// read first and then made in parallel, well inside the controller's
// debounce window (which opens at the first event and does not move) even
// on a loaded machine. A transition split over two passes would be judged
// against the wrong ends.
func updateNamespaces(t *testing.T, e *testbed.Env, projects map[string]string) {
	t.Helper()
	ctx := context.Background()
	var updates []*corev1.Namespace
	for name, project := range projects {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if project == "" {
			delete(ns.Annotations, "field.cattle.io/projectId")
			delete(ns.Labels, "field.cattle.io/projectId")
		} else {
			if ns.Annotations == nil {
				ns.Annotations = map[string]string{}
			}
			ns.Annotations["field.cattle.io/projectId"] = clusterID + ":" + project
			ns.Labels["field.cattle.io/projectId"] = project
		}
		updates = append(updates, ns)
	}
	var g errgroup.Group
	for _, ns := range updates {
		g.Go(func() error {
			_, err := e.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// cancelAfter wraps a transport: after n writes it cancels.
func cancelAfter(count *int, n int, cancel context.CancelFunc) func(http.RoundTripper) http.RoundTripper {
	var mu sync.Mutex
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if req.Method != http.MethodGet {
				mu.Lock()
				*count++
				if *count >= n {
					cancel()
				}
				mu.Unlock()
			}
			return resp, err
		})
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A cluster through install, egress switched off and on, moves of
// several namespaces at once, swaps, moves into and out of the System
// project, and cleanup: no state on the wire denies what both ends allow
// or allows what both deny.
func TestNoGapOnTheWire(t *testing.T) {
	for _, version := range noGapVersions {
		t.Run(version, func(t *testing.T) {
			e, api := noGapEnv(t, version)
			tr := newTransitions(t, e)
			cfg := config.Default()
			var r *running
			tr.check("cold start", func() {
				r = start(t, e, cfg, func(o *controller.Options) { o.Settle, o.Debounce = 300*time.Millisecond, time.Second })
			}, func() error { return converged(e, cfg, api) },
				expectation{"kube-system/coredns-6799fbcd5-h2k8x", "shop/cart-7d8f9c6b5-m4n7q", 80, true, "the System project reaches isolated namespaces"},
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "payments/api-5c6d7e8f9-p2q3r", 8443, true, "one project"},
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "redis/redis-master-0", 80, false, "another project"},
				expectation{"redis/redis-master-0", "shop/cart-7d8f9c6b5-m4n7q", 80, false, "another project"},
			)
			noEgress := config.Default()
			noEgress.IsolateEgress = false
			tr.check("isolateEgress off", func() { r.c.SetConfig(noEgress) }, func() error { return converged(e, noEgress, api) },
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "redis/redis-master-0", 80, false, "redis's ingress wall"})
			tr.check("isolateEgress on", func() { r.c.SetConfig(cfg) }, func() error { return converged(e, cfg, api) })

			tr.check("two namespaces of one project move together", func() {
				updateNamespaces(t, e, map[string]string{"shop": platform, "shop-batch": platform})
			}, func() error { return converged(e, cfg, api) },
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "shop-batch/report-28475620-z8k2d", 9100, true, "both moved to p-mcb29"},
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", 80, true, "now in the controller's project"},
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "payments/api-5c6d7e8f9-p2q3r", 8443, false, "payments stayed in p-b6jcw"},
			)
			tr.check("and back", func() {
				updateNamespaces(t, e, map[string]string{"shop": shopProject, "shop-batch": shopProject})
			}, func() error { return converged(e, cfg, api) })

			tr.check("two namespaces swap projects", func() {
				updateNamespaces(t, e, map[string]string{"payments": platform, "redis": shopProject})
			}, func() error { return converged(e, cfg, api) },
				expectation{"payments/api-5c6d7e8f9-p2q3r", "redis/redis-master-0", 6379, false, "still in different projects"},
				expectation{"redis/redis-master-0", "shop/cart-7d8f9c6b5-m4n7q", 80, true, "redis is in p-b6jcw now"},
				expectation{"payments/api-5c6d7e8f9-p2q3r", "shop/cart-7d8f9c6b5-m4n7q", 80, false, "payments left p-b6jcw"},
			)
			tr.check("and back", func() {
				updateNamespaces(t, e, map[string]string{"payments": shopProject, "redis": platform})
			}, func() error { return converged(e, cfg, api) })

			tr.check("into and out of the System project, with another move", func() {
				updateNamespaces(t, e, map[string]string{"shop-batch": systemProject, "sandbox": shopProject, "payments": platform})
			}, func() error { return converged(e, cfg, api) },
				expectation{"shop-batch/report-28475620-z8k2d", "redis/redis-master-0", 6379, true, "the System project reaches every isolated namespace"},
				expectation{"sandbox/debug", "shop/cart-7d8f9c6b5-m4n7q", 80, true, "sandbox joined p-b6jcw"},
				expectation{"sandbox/debug", "payments/api-5c6d7e8f9-p2q3r", 8443, false, "payments left for p-mcb29"},
			)
			tr.check("and back", func() {
				updateNamespaces(t, e, map[string]string{"shop-batch": shopProject, "sandbox": "", "payments": shopProject})
			}, func() error { return converged(e, cfg, api) })

			tr.check("cleanup", func() {
				r.stop()
				disc := discovery.NewDiscoveryClientForConfigOrDie(e.Config)
				if _, err := cluster.Cleanup(context.Background(), e.Kube, e.Dynamic, disc, cluster.CleanupOptions{Workers: 8, Settle: 300 * time.Millisecond}); err != nil {
					t.Error(err)
				}
			}, func() error { return testbed.NoNamespaceKeysLeft(context.Background(), e.Kube) },
				expectation{"shop/cart-7d8f9c6b5-m4n7q", "redis/redis-master-0", 80, true, "no isolation any more"},
			)
		})
	}
}

// An upgrade takes over what calico-pni 0.1.0 wrote
// (testdata/upgrade/0.1.0-calico-*.yaml, from main at 4f646b0): no write
// opens or closes anything, and the cluster ends as this release wants it.
// Since that commit the exceptions for outside clients (external services,
// host ports) select their source by Calico's orchestrator label instead
// of all(), so that network sets cannot switch them off: those policies,
// and nothing else of what 0.1.0 wrote, are rewritten.
func TestNoGapUpgradeFrom010(t *testing.T) {
	for _, version := range noGapVersions {
		t.Run(version, func(t *testing.T) {
			e, api := noGapEnv(t, version)
			minor := strings.Join(strings.Split(strings.TrimPrefix(version, "v"), ".")[:2], ".")
			written := loadWritten(t, e, filepath.Join("..", "testdata", "upgrade", "0.1.0-calico-"+minor+".yaml"))
			tr := newTransitions(t, e)
			cfg := config.Default()
			m := mark(t, e)
			tr.check("upgrade from 0.1.0", func() {
				start(t, e, cfg, func(o *controller.Options) { o.Settle = 300 * time.Millisecond })
			}, func() error { return converged(e, cfg, api) })
			// Only namespaces the rendered file does not hold (the API
			// server's own kube-public and kube-node-lease) get a status;
			// the outside-client exceptions get their new source.
			changed := map[string]bool{}
			for _, w := range daemonWrites(t, e, m) {
				if w.Resource == "namespaces" && !written[w.Name] {
					continue
				}
				if w.Resource == "globalnetworkpolicies" && (strings.HasSuffix(w.Name, "allow-external-services") || strings.HasSuffix(w.Name, "allow-host-ports")) {
					changed[w.Name[strings.LastIndex(w.Name, "allow-"):]] = true
					continue
				}
				t.Errorf("taking over what 0.1.0 wrote: %s (0.1.0 and this release write the same)", w)
			}
			if !changed["allow-external-services"] || !changed["allow-host-ports"] {
				t.Errorf("the outside-client exceptions rewritten: %v; want both, their source changed since 0.1.0", changed)
			}
		})
	}
}

// loadWritten puts on the server what a calico-pni render printed: the
// policies and tier as calico-pni writes them, the namespaces' labels and
// status. It returns the namespaces the file holds.
func loadWritten(t *testing.T, e *testbed.Env, path string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testbed.DecodeObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	namespaces := map[string]bool{}
	for _, u := range objs {
		gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
		if err != nil {
			t.Fatal(err)
		}
		if u.GetKind() == "Namespace" {
			namespaces[u.GetName()] = true
			live, err := e.Kube.CoreV1().Namespaces().Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range u.GetLabels() {
				live.Labels[k] = v
			}
			if live.Annotations == nil {
				live.Annotations = map[string]string{}
			}
			for k, v := range u.GetAnnotations() {
				live.Annotations[k] = v
			}
			if _, err := e.Kube.CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		api := calico.API{Group: gv.Group}
		res := e.Dynamic.Resource(api.Resource(u.GetKind()))
		if u.GetKind() == "Tier" {
			res = e.Dynamic.Resource(api.TierResource())
		}
		if _, err := res.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	return namespaces
}

// Cleanup stopped half way leaves every namespace either isolated with
// all its policies or released, and a second run finishes the job: the
// wire of both runs together has no gap.
func TestNoGapInterruptedCleanup(t *testing.T) {
	for _, version := range noGapVersions {
		t.Run(version, func(t *testing.T) {
			e, api := noGapEnv(t, version)
			tr := newTransitions(t, e)
			cfg := config.Default()
			var r *running
			tr.check("cold start", func() { r = start(t, e, cfg) }, func() error { return converged(e, cfg, api) })
			r.stop()
			disc := discovery.NewDiscoveryClientForConfigOrDie(e.Config)
			tr.check("cleanup stopped after a few writes, then run again", func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				// The first run's client stops the run after its fifth write.
				cfg := rest.CopyConfig(e.Config)
				n := 0
				cfg.Wrap(cancelAfter(&n, 5, cancel))
				stopped, err := cluster.Cleanup(ctx, kubernetes.NewForConfigOrDie(cfg), dynamic.NewForConfigOrDie(cfg), disc, cluster.CleanupOptions{Workers: 1})
				if err == nil {
					t.Errorf("the interrupted cleanup reported no error (it did %+v)", stopped)
				}
				if left := testbed.NoNamespaceKeysLeft(context.Background(), e.Kube); left == nil {
					t.Error("the interrupted cleanup finished: the test interrupts nothing")
				}
				if _, err := cluster.Cleanup(context.Background(), e.Kube, e.Dynamic, disc, cluster.CleanupOptions{Workers: 8}); err != nil {
					t.Error(err)
				}
			}, func() error {
				if err := testbed.NoNamespaceKeysLeft(context.Background(), e.Kube); err != nil {
					return err
				}
				if left, err := managedPolicies(e, api); err != nil || len(left) > 0 {
					return fmt.Errorf("policies left: %v %v", left, err)
				}
				return nil
			})
		})
	}
}

// Rancher's own isolation switched off while calico-pni runs: every
// policy labelled cattle.io/creator: norman deleted one after the other,
// in an order of the test's choosing, with passes of calico-pni in
// between, as Rancher deletes them. No state between "Rancher's isolation
// beside calico-pni" and "calico-pni alone" denies what both allow, in
// the default tier and in calico-pni's own tier (where calico-pni keeps
// a copy of Rancher's policies until the last is gone:
// policies/handover.go).
func TestNoGapRancherSwitchOff(t *testing.T) {
	fixture := filepath.Join("..", "testdata", "article-rancher-isolation.yaml")
	for _, version := range noGapVersions {
		t.Run(version, func(t *testing.T) {
			e, api := noGapEnv(t, version, fixture)
			probes, err := replay.ClusterProbes(fixture)
			if err != nil {
				t.Fatal(err)
			}
			tr := newTransitions(t, e)
			tr.probes = probes
			cfg := config.Default()
			var r *running
			tr.check("calico-pni installed beside Rancher's isolation", func() {
				r = start(t, e, cfg, func(o *controller.Options) { o.Settle, o.Debounce = 200*time.Millisecond, 50*time.Millisecond })
			}, func() error { return converged(e, cfg, api) })
			ctx := context.Background()
			nps, err := e.Kube.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: "cattle.io/creator=norman"})
			if err != nil || len(nps.Items) == 0 {
				t.Fatalf("Rancher's policies: %v, %v", len(nps.Items), err)
			}
			tr.check("Rancher's isolation switched off", func() {
				// hp- and np- before np-default and hn-nodes: the order that
				// cut the internet from host ports.
				slices.SortFunc(nps.Items, func(a, b networkingv1.NetworkPolicy) int {
					rank := func(n string) int {
						switch {
						case strings.HasPrefix(n, "hp-"), strings.HasPrefix(n, "np-") && n != "np-default" && n != "np-default-allow-all":
							return 0
						case n == "hn-nodes":
							return 2
						}
						return 1
					}
					return cmp.Or(cmp.Compare(rank(a.Name), rank(b.Name)), cmp.Compare(a.Namespace+a.Name, b.Namespace+b.Name))
				})
				for _, np := range nps.Items {
					began := r.c.PassesStarted()
					if err := e.Kube.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
					// A pass of the controller between two deletes.
					testbed.Eventually(t, wait, func() error {
						if last := r.c.LastPass(); last.Started <= began {
							return fmt.Errorf("no pass after deleting %s/%s yet", np.Namespace, np.Name)
						}
						return nil
					})
				}
			}, func() error { return converged(e, cfg, api) },
				expectation{"internet", "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", 80, true, "calico-pni's host-port exception"},
			)
		})
	}
}
