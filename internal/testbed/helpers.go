package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/calico-pni/calico-pni/policies"
)

// DeleteNamespace deletes a namespace and finalizes it, as the namespace
// controller of a real cluster would (the test bed runs none).
func (e *Env) DeleteNamespace(ctx context.Context, name string) error {
	err := e.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ns.Spec.Finalizers = nil
	_, err = e.Kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Writes counts the write requests (everything but GET, LIST and WATCH)
// made through a client, by method and path, leaving out events and
// leader-election leases, which are not writes of calico-pni's state.
type Writes struct {
	mu       sync.Mutex
	requests []string
}

// CountWrites returns a copy of cfg whose requests are counted.
func CountWrites(cfg *rest.Config) (*rest.Config, *Writes) {
	w := &Writes{}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.Method != http.MethodGet && !strings.Contains(req.URL.Path, "/events") && !strings.Contains(req.URL.Path, "/leases") {
				w.mu.Lock()
				w.requests = append(w.requests, req.Method+" "+req.URL.Path)
				w.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return out, w
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Count returns how many writes were made so far.
func (w *Writes) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.requests)
}

// Since returns the writes made after the first n.
func (w *Writes) Since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests[n:]...)
}

// Eventually calls check until it returns nil, failing the test with the
// last error after timeout. It is for waiting on a controller, never for
// measuring one: speed is measured by the benchmarks.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Namespace builds a namespace the way Rancher leaves one in a project
// (label and annotation), with extra labels as key, value pairs.
func Namespace(name, cluster, project string, labels ...string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
	if project != "" {
		ns.Labels["field.cattle.io/projectId"] = project
		ns.Annotations["field.cattle.io/projectId"] = fmt.Sprintf("%s:%s", cluster, project)
	}
	for i := 0; i+1 < len(labels); i += 2 {
		ns.Labels[labels[i]] = labels[i+1]
	}
	return ns
}

// Buffer is a bytes.Buffer that a process or logger may write to while a
// test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NoNamespaceKeysLeft reports every calico-pni label and status annotation
// still on a namespace (after a cleanup, there must be none).
func NoNamespaceKeysLeft(ctx context.Context, kube kubernetes.Interface) error {
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var left []error
	for _, ns := range list.Items {
		for k := range ns.Labels {
			if strings.HasPrefix(k, policies.LabelPrefix) {
				left = append(left, fmt.Errorf("namespace %s keeps label %s", ns.Name, k))
			}
		}
		if _, ok := ns.Annotations[policies.StatusAnnotation]; ok {
			left = append(left, fmt.Errorf("namespace %s keeps its status", ns.Name))
		}
	}
	return errors.Join(left...)
}
