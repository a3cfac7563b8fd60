package charttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// Helpers for the tests against the real API server: applying manifests
// as Helm would, identities of the chart's service accounts, and running
// the calico-pni binary.

var (
	fixtureOnce sync.Once
	fixtureErr  error
)

// loadFixture loads the article's cluster into the API server, once.
func loadFixture(t *testing.T, e *testbed.Env) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureErr = e.LoadCluster(context.Background(), repo(t, "testdata", "article-cluster.yaml"))
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
}

// fixtureNamespaces lists the namespaces of the fixture file.
func fixtureNamespaces(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(repo(t, "testdata", "article-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decode(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range docs {
		if o.GetKind() == "Namespace" {
			names = append(names, o.GetName())
		}
	}
	if len(names) == 0 {
		t.Fatal("the fixture has no namespaces")
	}
	return names
}

// applier applies manifests with server-side apply, as helm does with
// --server-side, or validates them with a server-side dry run.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(cfg *rest.Config) (*applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

func (a *applier) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk, u.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: "helm", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Apply(ctx, u.GetName(), u, opts); err != nil {
		return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

func (a *applier) delete(ctx context.Context, u *unstructured.Unstructured) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	return ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{})
}

// identity is a user of the test API server.
type identity struct {
	name       string
	groups     []string
	config     *rest.Config
	kube       kubernetes.Interface
	kubeconfig string
}

// serviceAccount makes the identity a Pod running as the service account
// would have: its user name and groups, authenticated by a client
// certificate (the test bed runs no token controller).
func serviceAccount(t *testing.T, e *testbed.Env, ns, name string) *identity {
	t.Helper()
	return user(t, e, "system:serviceaccount:"+ns+":"+name, "system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
}

func user(t *testing.T, e *testbed.Env, name string, groups ...string) *identity {
	t.Helper()
	u, err := e.Environment().AddUser(envtest.User{Name: name, Groups: groups}, e.Config)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(u.Config())
	if err != nil {
		t.Fatal(err)
	}
	return &identity{name: name, groups: groups, config: u.Config(), kube: kube, kubeconfig: path}
}

// access is one request an identity may or may not make.
type access struct {
	verb, group, resource, namespace, name string
	allowed                                bool
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.name != "" {
		s += " " + a.name
	}
	if a.namespace != "" {
		s += " in " + a.namespace
	}
	return s
}

// checkAccess asks the API server's authorizer about each request. RBAC
// changes reach the authorizer through a cache, so each answer is awaited.
func checkAccess(t *testing.T, e *testbed.Env, id *identity, table []access) {
	t.Helper()
	for _, a := range table {
		testbed.Eventually(t, 20*time.Second, func() error {
			review, err := e.Kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{
					User:   id.name,
					Groups: id.groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
					},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if review.Status.Allowed != a.allowed {
				return fmt.Errorf("%s may %s: %t, want %t (%s)", id.name, a, review.Status.Allowed, a.allowed, review.Status.Reason)
			}
			return nil
		})
	}
}

// cannotReadSecrets makes real requests for Secrets as the identity.
func cannotReadSecrets(t *testing.T, id *identity) {
	t.Helper()
	ctx := context.Background()
	_, err := id.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if !isForbidden(err) {
		t.Errorf("%s listing Secrets in every namespace: %v, want Forbidden", id.name, err)
	}
	for _, ns := range []string{namespace, "default", "kube-system"} {
		if _, err := id.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !isForbidden(err) {
			t.Errorf("%s listing Secrets in %s: %v, want Forbidden", id.name, ns, err)
		}
		if _, err := id.kube.CoreV1().Secrets(ns).Get(ctx, "any", metav1.GetOptions{}); !isForbidden(err) {
			t.Errorf("%s reading a Secret in %s: %v, want Forbidden", id.name, ns, err)
		}
	}
}

// process is a calico-pni binary running as a child of the test.
type process struct {
	cmd    *exec.Cmd
	output *testbed.Buffer
	done   chan struct{}
	err    error
}

// start runs bin with args; the test's end stops it and, if the test
// failed, logs its output.
func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), output: &testbed.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), p.output.String())
		}
	})
	return p
}

// stop sends SIGTERM, as the kubelet does, and returns the exit error.
func (p *process) stop(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 30s of SIGTERM", p.cmd.Path)
	}
	return p.err
}

// run runs bin to completion and returns its combined output.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// containerArgs returns a container's arguments with $(VAR) references to
// its environment expanded, as the kubelet does, for the Pod named
// podName; fieldRef variables get the Pod's name and namespace.
func containerArgs(t *testing.T, c corev1.Container, podName string) []string {
	t.Helper()
	vars := map[string]string{}
	for _, env := range c.Env {
		switch {
		case env.ValueFrom == nil:
			vars[env.Name] = env.Value
		case env.ValueFrom.FieldRef != nil && env.ValueFrom.FieldRef.FieldPath == "metadata.name":
			vars[env.Name] = podName
		case env.ValueFrom.FieldRef != nil && env.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			vars[env.Name] = namespace
		default:
			t.Fatalf("container %s: env %s comes from %+v, which this test cannot provide", c.Name, env.Name, env.ValueFrom)
		}
	}
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		for name, v := range vars {
			a = strings.ReplaceAll(a, "$("+name+")", v)
		}
		if strings.Contains(a, "$(") {
			t.Fatalf("container %s: argument %q refers to a variable the container does not define", c.Name, a)
		}
		out[i] = a
	}
	return out
}

// replaceFlag swaps the value of --name=value in args and fails if the
// flag is not there: the test runs what the chart runs, changed only
// where a test cannot be a Pod.
func replaceFlag(t *testing.T, args []string, name, value string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, "--"+name+"=") {
			out[i] = "--" + name + "=" + value
			return out
		}
	}
	t.Fatalf("the chart does not pass --%s: %q", name, args)
	return nil
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func isForbidden(err error) bool {
	var status interface{ Status() metav1.Status }
	return err != nil && errors.As(err, &status) && status.Status().Code == http.StatusForbidden
}
