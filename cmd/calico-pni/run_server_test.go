package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// 8. A bad configuration stops the daemon at start with exit code 1 and a
// message that names the field.
func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(bad, []byte("kubeAPI:\n  port: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := calicoPNI(t, "", "run", "--config", bad, "--kubeconfig", filepath.Join(dir, "unused"))
	if code != exitInvalid || !strings.Contains(stderr, "kubeAPI.port: 0 is not a port number") || !strings.Contains(stderr, bad) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = calicoPNI(t, "", "run", "--log-level", "loud")
	if code != exitUsage || !strings.Contains(stderr, `--log-level "loud"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = calicoPNI(t, "", "run", "--kubeconfig", filepath.Join(dir, "missing"))
	if code != exitInvalid || !strings.Contains(stderr, "--kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d, stderr %q", code, stderr)
	}
}

// testDaemon starts `calico-pni run` in-process against the test server.
// Later flags in extra override the defaults here.
func testDaemon(t *testing.T, ctx context.Context, name, kubeconfig, configPath string, extra ...string) *daemon {
	t.Helper()
	var f runFlags
	fs := newRunFlagSet(&f)
	args := append([]string{
		"--kubeconfig", kubeconfig, "--config", configPath, "--config-poll", "1h",
		"--http-address", "127.0.0.1:0", "--pod-name", name, "--pod-namespace", "default",
		"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "200ms",
		"--debounce", "20ms",
	}, extra...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("daemon", name)
	}
	d, err := startDaemon(ctx, f, log)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func httpGet(t *testing.T, d *daemon, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func metric(t *testing.T, d *daemon, prefix string) string {
	t.Helper()
	_, body := httpGet(t, d, "/metrics")
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// 7 and 8. Two daemons elect one leader, which alone writes; when it
// stops, the other takes over and converges. A bad configuration on
// reload is refused with an event and the one in force stays; a good one
// is applied.
func TestDaemonsLeaderElectionAndReload(t *testing.T) {
	e := testbed.Need(t, env)
	loadFixtureOnce(t, e)
	dir := t.TempDir()
	kubeconfig, err := e.WriteKubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	configA := filepath.Join(dir, "a.yaml")
	configB := filepath.Join(dir, "b.yaml")
	for _, p := range []string{configA, configB} {
		if err := os.WriteFile(p, []byte("isolateUnassigned: false\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	t.Cleanup(func() {
		stopA()
		stopB()
		_, err := cluster.Cleanup(context.Background(), e.Kube, e.Dynamic, discovery.NewDiscoveryClientForConfigOrDie(e.Config), cluster.CleanupOptions{Workers: 16})
		if err != nil {
			t.Error(err)
		}
		_ = e.DeleteNamespace(context.Background(), "late-arrival")
		_ = e.Kube.CoordinationV1().Leases("default").Delete(context.Background(), "calico-pni", metav1.DeleteOptions{})
	})
	a := testDaemon(t, ctxA, "daemon-a", kubeconfig, configA)
	b := testDaemon(t, ctxB, "daemon-b", kubeconfig, configB)

	var leader, standby *daemon
	var stopLeader context.CancelFunc
	testbed.Eventually(t, 30*time.Second, func() error {
		switch {
		case a.leading.Load() && b.leading.Load():
			return fmt.Errorf("both lead")
		case a.leading.Load():
			leader, standby, stopLeader = a, b, stopA
		case b.leading.Load():
			leader, standby, stopLeader = b, a, stopB
		default:
			return fmt.Errorf("no leader yet")
		}
		if !leader.controller.Ready() {
			return fmt.Errorf("leader not ready")
		}
		return nil
	})
	for _, d := range []*daemon{leader, standby} {
		if code, body := httpGet(t, d, "/readyz"); code != http.StatusOK {
			t.Errorf("%s /readyz: %d %s", d.f.podName, code, body)
		}
		if code, _ := httpGet(t, d, "/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz: %d", d.f.podName, code)
		}
	}
	if got := metric(t, leader, "calico_pni_leader "); got != "calico_pni_leader 1" {
		t.Errorf("leader metric %q", got)
	}
	for _, l := range strings.Split(metric(t, standby, "calico_pni_writes_total{"), "\n") {
		if !strings.HasSuffix(l, " 0") {
			t.Errorf("the standby wrote: %s", l)
		}
	}
	if got := metric(t, leader, `calico_pni_writes_total{kind="GlobalNetworkPolicy",verb="create"}`); strings.HasSuffix(got, " 0") || got == "" {
		t.Errorf("leader writes: %q", got)
	}
	for _, name := range []string{"calico_pni_passes_total", "calico_pni_pass_duration_seconds", "calico_pni_managed_policies", "calico_pni_namespaces", "calico_pni_api_mode", "calico_pni_errors_total", "calico_pni_config_reloads_total"} {
		if !strings.Contains(metric(t, leader, name), name) {
			t.Errorf("metric %s is not exposed", name)
		}
	}
	if got := metric(t, leader, "calico_pni_api_mode"); !strings.Contains(got, `group="projectcalico.org/v3"`) {
		t.Errorf("api mode %q (both APIs are served here; v3 must win)", got)
	}

	// The leader goes; the standby takes over and reconciles a change.
	stopLeader()
	<-leader.done
	testbed.Eventually(t, 30*time.Second, func() error {
		if !standby.leading.Load() || !standby.controller.Ready() {
			return fmt.Errorf("the standby has not taken over")
		}
		return nil
	})
	ctx := context.Background()
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace("late-arrival", "c-m4x7q", "p-b6jcw"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 30*time.Second, func() error {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, "late-arrival", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st, err := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
		if err != nil || st.State != policies.Isolated {
			return fmt.Errorf("late-arrival: %v %+v", err, st)
		}
		return nil
	})

	// A bad configuration on reload: refused, the old one stays, an event
	// on the daemon's Pod says why.
	cfgPath := standby.f.configPath
	if err := os.WriteFile(cfgPath, []byte("dns:\n  mode: everywhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := standby.controller.Config()
	standby.reload()
	if standby.controller.Config() != before {
		t.Error("a rejected configuration replaced the one in force")
	}
	testbed.Eventually(t, 30*time.Second, func() error {
		events, err := e.Kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + standby.f.podName})
		if err != nil {
			return err
		}
		for _, ev := range events.Items {
			if ev.Reason == "ConfigRejected" && strings.Contains(ev.Message, `dns.mode: "everywhere" is not a DNS mode`) {
				return nil
			}
		}
		return fmt.Errorf("no ConfigRejected event yet (%d events)", len(events.Items))
	})
	if got := metric(t, standby, `calico_pni_config_reloads_total{result="rejected"}`); !strings.HasSuffix(got, " 1") {
		t.Errorf("rejected reloads: %q", got)
	}

	// A good one is applied: namespaces in no project become isolated.
	if err := os.WriteFile(cfgPath, []byte("isolateUnassigned: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	standby.reload()
	testbed.Eventually(t, 30*time.Second, func() error {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, "sandbox", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ns.Labels[policies.IsolatedLabel] != "true" {
			return fmt.Errorf("sandbox not isolated after the reload: %v", ns.Labels)
		}
		return nil
	})
}
