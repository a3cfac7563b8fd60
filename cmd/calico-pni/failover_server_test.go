package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// Leader failover, the hard way: the leader's process is stopped (SIGSTOP)
// without releasing the lease while the cluster changes. The standby takes
// over once the lease has expired and follows the changes. When the old
// leader's process continues, it still believes it leads, with events
// queued; it must stand down without writing. The API server's audit log
// shows who wrote what: the old leader sends no write after it continues,
// and the two replicas' writes never overlap. Its own log shows that it
// did try to write once it continued, and that the lease fence refused.
//
// The leader is stopped while a change is on its way to it, so it may be
// in the middle of a pass or of a lease renewal (one every retry period):
// a request it sent just before it froze can reach the API server after
// the test sent the signal (an earlier form of this test counted such
// requests as faults). Such a write was
// sent while the leader held the lease, and is not a fault. What the test
// holds the daemon to is what it controls: nothing it sends once it runs
// again. The process is frozen (every thread stopped, read from /proc)
// from "stopped" to "resumed", so a write the API server received in
// between was sent before the freeze.
//
// A request that passed the fence's first check just before the freeze
// must still not go out after it: the fence checks again on the socket
// (fence.go). What no lease-based leader election can rule out (Kubernetes
// leases carry no fencing token) is a process frozen inside that last
// system call, or with a request half sent, its headers on the wire and
// its body not; the overlap check below would report it.
func TestLeaderFailoverTheHardWay(t *testing.T) {
	e := testbed.Need(t, env)
	loadFixtureOnce(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("isolateUnassigned: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const lease = "calico-pni-failover"
	t.Cleanup(func() {
		_ = e.Kube.CoordinationV1().Leases("default").Delete(ctx, lease, metav1.DeleteOptions{})
		for _, ns := range []string{"failover-new", "failover-late"} {
			_ = e.DeleteNamespace(ctx, ns)
		}
		moveNamespace(t, e, "shop-batch", "p-b6jcw")
		if _, err := cluster.Cleanup(ctx, e.Kube, e.Dynamic, discovery.NewDiscoveryClientForConfigOrDie(e.Config), cluster.CleanupOptions{Workers: 16}); err != nil {
			t.Error(err)
		}
	})

	m, err := e.Wire().Mark()
	if err != nil {
		t.Fatal(err)
	}
	procs := map[string]*process{}
	for _, name := range []string{"daemon-a", "daemon-b"} {
		kubeconfig, err := e.WriteKubeconfigAs(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		procs[name] = startProcess(t, name, "run",
			"--kubeconfig", kubeconfig, "--config", cfgPath, "--config-poll", "1h",
			"--http-address", "127.0.0.1:0", "--pod-name", name, "--pod-namespace", "default",
			"--leader-election-id", lease, "--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "500ms",
			"--debounce", "20ms", "--log-format", "text")
	}
	holder := func() string {
		l, err := e.Kube.CoordinationV1().Leases("default").Get(ctx, lease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		name, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return name
	}
	var leader string
	testbed.Eventually(t, 60*time.Second, func() error {
		if leader = holder(); leader == "" {
			return fmt.Errorf("no leader yet")
		}
		return isolatedIn(e, "shop", "p-b6jcw")
	})
	standby := "daemon-a"
	if leader == standby {
		standby = "daemon-b"
	}

	// Stop the leader mid-stream: a change is on its way to it.
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace("failover-new", "c-m4x7q", "p-b6jcw"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	procs[leader].signal(t, syscall.SIGSTOP)
	procs[leader].waitStopped(t)
	stopped := time.Now()
	moveNamespace(t, e, "shop-batch", "p-mcb29")

	testbed.Eventually(t, 60*time.Second, func() error {
		if h := holder(); h != standby {
			return fmt.Errorf("the lease is still held by %q", h)
		}
		if err := isolatedIn(e, "failover-new", "p-b6jcw"); err != nil {
			return err
		}
		return isolatedIn(e, "shop-batch", "p-mcb29")
	})
	tookOver := time.Since(stopped)

	// The old leader continues, still believing it leads; more changes
	// follow, which only the new leader may write.
	// A frozen process writes no log: what it logs from here on is what
	// it did once it continued.
	frozenLog := len(procs[leader].logs.String())
	sinceResume := func() string { return procs[leader].logs.String()[frozenLog:] }
	procs[leader].signal(t, syscall.SIGCONT)
	resumed := time.Now()
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace("failover-late", "c-m4x7q", "p-mcb29"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		if !strings.Contains(sinceResume(), "standing by") {
			return fmt.Errorf("the old leader has not stood down yet")
		}
		return isolatedIn(e, "failover-late", "p-mcb29")
	})
	if h := holder(); h != standby {
		t.Errorf("the lease went back to %q", h)
	}
	// Until client-go tells it that it lost the lease (its renew deadline
	// after it continues), the old leader still believes it leads and
	// acts on the changes queued for it: it must have tried to write
	// them, and the fence must have refused, not the audit log merely
	// shown nothing because it never tried.
	if log := sinceResume(); !strings.Contains(log, "pass failed") || !strings.Contains(log, "not writing: the leader lease was last renewed") {
		t.Errorf("the old leader did not try to write once it continued, or the fence did not refuse it; its log since:\n%s", log)
	}

	writes, err := e.Wire().Writes(m)
	if err != nil {
		t.Fatal(err)
	}
	var lastOld, firstNew time.Time
	inFlight := 0
	for _, w := range writes {
		switch w.Writer {
		case leader:
			switch {
			case !w.Received.Before(resumed):
				t.Errorf("the old leader wrote after it continued (it was stopped for %s): %s received at %s", resumed.Sub(stopped).Round(time.Millisecond), w, w.Received.Format(time.StampMicro))
			case w.Received.After(stopped):
				inFlight++
			}
			if w.Done.After(lastOld) {
				lastOld = w.Done
			}
		case standby:
			if firstNew.IsZero() {
				firstNew = w.Received
			}
		}
	}
	if firstNew.IsZero() {
		t.Fatal("the new leader wrote nothing")
	}
	if !lastOld.IsZero() && !lastOld.Before(firstNew) {
		t.Errorf("the leaders' writes overlap: the old leader's last ended %s, the new leader's first began %s", lastOld.Format(time.StampMicro), firstNew.Format(time.StampMicro))
	}
	if t.Failed() {
		t.Logf("stopped %s, resumed %s; the writes since the daemons started:", stopped.Format(time.StampMicro), resumed.Format(time.StampMicro))
		for _, w := range writes {
			t.Logf("  %s received %s done %s", w, w.Received.Format(time.StampMicro), w.Done.Format(time.StampMicro))
		}
	}
	t.Logf("the standby took over %s after the leader stopped (lease 4s); %d of the old leader's writes were on their way when it froze", tookOver.Round(time.Millisecond), inFlight)
}

// moveNamespace sets a namespace's project as Rancher does (annotation and
// label).
func moveNamespace(t *testing.T, e *testbed.Env, name, project string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{"field.cattle.io/projectId":%q},"annotations":{"field.cattle.io/projectId":"c-m4x7q:%s"}}}`, project, project)
	if _, err := e.Kube.CoreV1().Namespaces().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// isolatedIn reports whether calico-pni isolated a namespace in a project.
func isolatedIn(e *testbed.Env, name, project string) error {
	ns, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if ns.Labels[policies.IsolatedLabel] != "true" || ns.Labels[policies.ProjectLabel] != project {
		return fmt.Errorf("namespace %s: calico-pni labels %v, want isolated in %s", name, ns.Labels, project)
	}
	return nil
}
