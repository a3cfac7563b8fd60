package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// env serves Calico 3.28's v1 CRDs and holds the article fixture; each test
// leaves it as it found it (see start and createNamespace).
var env *testbed.Env

const clusterID = "c-m4x7q"

var v128 = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}

func TestMain(m *testing.M) {
	os.Exit(testbed.Run(m, testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"}, &envWithFixture))
}

// envWithFixture is filled by testbed.Run; the fixture is loaded on first use.
var (
	envWithFixture *testbed.Env
	fixtureOnce    sync.Once
	fixtureErr     error
)

func fixtureEnv(t *testing.T) *testbed.Env {
	t.Helper()
	e := testbed.Need(t, envWithFixture)
	fixtureOnce.Do(func() {
		fixtureErr = e.LoadCluster(context.Background(), filepath.Join("..", "testdata", "article-cluster.yaml"))
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	env = e
	return e
}

// daemonUser is the identity a controller under test writes as; the wire
// record (the API server's audit log) names it.
const daemonUser = "calico-pni-daemon"

// running is a controller under test.
type running struct {
	c      *controller.Controller
	writes *testbed.Writes
	logs   *testbed.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	// ctx lives as long as the controller (its informers); a term of
	// leading has its own context, ended by stepDown.
	ctx     context.Context
	endTerm context.CancelFunc
}

// start runs a controller against e as the leader. When the test ends it
// stops it and removes everything calico-pni wrote, so the next test
// starts from the fixture alone.
func start(t testing.TB, e *testbed.Env, cfg *config.Config, mutate ...func(*controller.Options)) *running {
	t.Helper()
	restCfg, writes := testbed.CountWrites(testbed.As(e.Config, daemonUser))
	kube := kubernetes.NewForConfigOrDie(restCfg)
	dyn := dynamic.NewForConfigOrDie(restCfg)
	disc := discovery.NewDiscoveryClientForConfigOrDie(restCfg)
	logs := &testbed.Buffer{}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: e.Kube.CoreV1().Events("")})
	opts := controller.Options{
		Kube: kube, Dynamic: dyn, Discovery: disc, Config: cfg,
		Workers: 8, Debounce: 20 * time.Millisecond,
		Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "calico-pni"}),
		Self:     &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: "calico-pni-test", Namespace: "default"},
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := controller.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{c: c, writes: writes, logs: logs, cancel: cancel, ctx: ctx}
	r.lead()
	t.Cleanup(func() {
		r.stop()
		broadcaster.Shutdown()
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
		cleanupCluster(t, e)
	})
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

// lead begins a term of leading, as a replica does that wins the lease.
func (r *running) lead() {
	term, endTerm := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.endTerm, r.done = endTerm, done
	go func() {
		defer close(done)
		r.c.Lead(term)
	}()
}

// stepDown ends the term, as losing the lease does; the informers keep
// running, as a standby's do.
func (r *running) stepDown() {
	r.endTerm()
	<-r.done
}

// waitReady waits for the first complete pass.
func (r *running) waitReady(t testing.TB) {
	t.Helper()
	testbed.Eventually(t, 60*time.Second, func() error {
		if r.c.Ready() {
			return nil
		}
		return fmt.Errorf("not ready; last pass: %+v", r.c.LastPass())
	})
}

// cleanupCluster removes what calico-pni wrote (the product's own cleanup)
// and the namespaces tests created.
func cleanupCluster(t testing.TB, e *testbed.Env) {
	t.Helper()
	ctx := context.Background()
	disc := discovery.NewDiscoveryClientForConfigOrDie(e.Config)
	if _, err := cluster.Cleanup(ctx, e.Kube, e.Dynamic, disc, cluster.CleanupOptions{Workers: 16}); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, name := range created[t.Name()] {
		if err := e.DeleteNamespace(ctx, name); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	}
	delete(created, t.Name())
}

var created = map[string][]string{}

// createNamespace creates a namespace that the test's cleanup deletes.
func createNamespace(t *testing.T, e *testbed.Env, ns *corev1.Namespace) {
	t.Helper()
	if _, err := e.Kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created[t.Name()] = append(created[t.Name()], ns.Name)
}

// converged reports whether the server holds exactly what the generator
// wants for the cluster as it is now: each managed policy compared whole
// (labels, description, spec), no other managed policy, and each
// namespace's calico-pni labels and status.
func converged(e *testbed.Env, cfg *config.Config, api calico.API) error {
	ctx := context.Background()
	snap, err := cluster.ListSnapshot(ctx, e.Kube)
	if err != nil {
		return err
	}
	snap.CalicoVersion = api.Version
	desired := policies.Generate(snap, cfg)
	want := map[string]*unstructured.Unstructured{}
	for _, p := range desired.Policies {
		u := api.Object(p)
		want[u.GetNamespace()+"/"+u.GetName()] = u
	}
	got, err := managedPolicies(e, api)
	if err != nil {
		return err
	}
	for key, g := range got {
		w, ok := want[key]
		if !ok {
			return fmt.Errorf("managed policy %s is not wanted", key)
		}
		if err := sameObject(w, g); err != nil {
			return err
		}
	}
	for key := range want {
		if _, ok := got[key]; !ok {
			return fmt.Errorf("policy %s is missing", key)
		}
	}
	for _, d := range desired.Namespaces {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		own := map[string]string{}
		for k, v := range ns.Labels {
			if len(k) > len(policies.LabelPrefix) && k[:len(policies.LabelPrefix)] == policies.LabelPrefix {
				own[k] = v
			}
		}
		if !reflect.DeepEqual(own, d.Labels) {
			return fmt.Errorf("namespace %s has calico-pni labels %v, want %v", d.Name, own, d.Labels)
		}
		// The daemon adds the exposures it finds and the pending denies of
		// the flow logs; the generator alone knows neither.
		got, err := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
		if err != nil {
			return fmt.Errorf("namespace %s status: %w", d.Name, err)
		}
		got.Exposures, got.Pending = nil, nil
		if got, want := got.Encode(), d.Status.Encode(); got != want {
			return fmt.Errorf("namespace %s status\n got %s\nwant %s", d.Name, got, want)
		}
	}
	return nil
}

// managedPolicies reads the managed policies of every kind the API serves
// (staged ones included), by namespace/name.
func managedPolicies(e *testbed.Env, api calico.API) (map[string]*unstructured.Unstructured, error) {
	out := map[string]*unstructured.Unstructured{}
	for _, kind := range api.PolicyKinds() {
		list, err := e.Dynamic.Resource(api.Resource(kind)).List(context.Background(), metav1.ListOptions{LabelSelector: calico.ManagedByLabel + "=" + calico.ManagedByValue})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			u := &list.Items[i]
			out[u.GetNamespace()+"/"+u.GetName()] = u
		}
	}
	return out, nil
}

// sameObject compares what calico-pni writes: kind, name, its labels, its
// description and the whole spec as JSON.
func sameObject(want, got *unstructured.Unstructured) error {
	if want.GetAPIVersion() != got.GetAPIVersion() || want.GetKind() != got.GetKind() || want.GetName() != got.GetName() {
		return fmt.Errorf("%s: read back as %s %s %s", want.GetName(), got.GetAPIVersion(), got.GetKind(), got.GetName())
	}
	for k, v := range want.GetLabels() {
		if got.GetLabels()[k] != v {
			return fmt.Errorf("%s: label %s=%q, want %q", want.GetName(), k, got.GetLabels()[k], v)
		}
	}
	if g, w := got.GetAnnotations()[calico.DescriptionAnnotation], want.GetAnnotations()[calico.DescriptionAnnotation]; g != w {
		return fmt.Errorf("%s: description %q, want %q", want.GetName(), g, w)
	}
	ws, _ := json.Marshal(want.Object["spec"])
	gs, _ := json.Marshal(got.Object["spec"])
	if string(ws) != string(gs) {
		return fmt.Errorf("%s: spec\n got %s\nwant %s", want.GetName(), gs, ws)
	}
	return nil
}

// status reads a namespace's calico-pni status.
func status(t *testing.T, e *testbed.Env, name string) (policies.Status, map[string]string) {
	t.Helper()
	st, labels, err := readStatus(e, name)
	if err != nil {
		t.Fatal(err)
	}
	return st, labels
}

func readStatus(e *testbed.Env, name string) (policies.Status, map[string]string, error) {
	ns, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return policies.Status{}, nil, err
	}
	st, err := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
	if err != nil {
		return st, ns.Labels, fmt.Errorf("namespace %s status %q: %v", name, ns.Annotations[policies.StatusAnnotation], err)
	}
	return st, ns.Labels, nil
}

// policyNames lists the v3 names of the managed policies on the server.
func policyNames(t *testing.T, e *testbed.Env, api calico.API) []string {
	t.Helper()
	got, err := managedPolicies(e, api)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range got {
		names = append(names, api.PolicyName(u.GetName()))
	}
	slices.Sort(names)
	return names
}

// waitPass runs trigger and waits for a pass of the given kind ("event" or
// "refresh") that began after the trigger to finish.
func (r *running) waitPass(t *testing.T, kind string, trigger func()) controller.PassResult {
	t.Helper()
	before := r.c.PassesStarted()
	trigger()
	var res controller.PassResult
	testbed.Eventually(t, 30*time.Second, func() error {
		res = r.c.LastPassOf(kind)
		if res.Started <= before {
			return fmt.Errorf("no %s pass begun after the trigger has finished yet (last pass: %+v)", kind, r.c.LastPass())
		}
		return nil
	})
	return res
}
