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
	"k8s.io/client-go/discovery"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// configVolume lays out a configuration file the way the kubelet mounts a
// ConfigMap: config.yaml -> ..data/config.yaml, ..data -> ..<version>; an
// update writes a new version directory and swaps the ..data link.
type configVolume struct {
	dir     string
	version int
}

func newConfigVolume(t *testing.T, content string) *configVolume {
	t.Helper()
	v := &configVolume{dir: t.TempDir()}
	v.write(t, content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), v.path()); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *configVolume) path() string { return filepath.Join(v.dir, "config.yaml") }

func (v *configVolume) write(t *testing.T, content string) {
	t.Helper()
	v.version++
	version := fmt.Sprintf("..2026_11_28_00_00_%02d.%d", v.version, os.Getpid())
	if err := os.Mkdir(filepath.Join(v.dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, version, "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// The configuration file is polled: a ConfigMap update (a swap of the
// ..data link) is applied; the same content written again changes nothing
// and starts no pass; a new refresh schedule takes effect; an invalid
// file is refused, the configuration in force stays, and an event says
// why.
func TestConfigReloadByPoll(t *testing.T) {
	e := testbed.Need(t, env)
	loadFixtureOnce(t, e)
	ctx, stop := context.WithCancel(context.Background())
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vol := newConfigVolume(t, "isolateUnassigned: false\n")
	d := testDaemon(t, ctx, "reload-poll", kubeconfig, vol.path(), "--config-poll", "50ms", "--leader-election-id", "calico-pni-reload-poll")
	t.Cleanup(func() {
		stop()
		<-d.done
		cleanupAfterDaemon(t, e, "calico-pni-reload-poll")
	})
	testbed.Eventually(t, 30*time.Second, func() error {
		if !d.leading.Load() || !d.controller.Ready() {
			return fmt.Errorf("not leading and ready yet")
		}
		return stateOf(e, "sandbox", policies.Open)
	})

	// A ConfigMap update.
	vol.write(t, "isolateUnassigned: true\n")
	testbed.Eventually(t, 30*time.Second, func() error { return stateOf(e, "sandbox", policies.Isolated) })
	if got := metric(t, d, `calico_pni_config_reloads_total{result="applied"}`); !strings.HasSuffix(got, " 1") {
		t.Errorf("applied reloads: %q", got)
	}

	// The same content again, in a new version directory: no reload, no
	// pass. Wait for the daemon to be quiet first, then for three looks at
	// the file.
	testbed.Eventually(t, 30*time.Second, func() error {
		last := d.controller.LastPass()
		if last.Started != d.controller.PassesStarted() || len(last.Writes) > 0 {
			return fmt.Errorf("the daemon is still busy: %+v", last)
		}
		return nil
	})
	// A reload starts a refresh pass; the events of the last writes may
	// still start event passes, which write nothing.
	refreshes, cfg := d.controller.LastPassOf("refresh").Seq, d.controller.Config()
	vol.write(t, "isolateUnassigned: true\n")
	waitPolls(t, d, 3)
	if got := d.controller.LastPassOf("refresh"); got.Seq != refreshes {
		t.Errorf("an unchanged file started a refresh pass: %+v", got)
	}
	if got := d.controller.LastPass(); len(got.Writes) > 0 {
		t.Errorf("a pass after an unchanged file wrote: %+v", got)
	}
	if d.controller.Config() != cfg {
		t.Error("an unchanged file replaced the configuration in force")
	}

	// A new refresh schedule.
	vol.write(t, "isolateUnassigned: true\nkubeAPI:\n  refreshSchedule: \"0 0 1 1 *\"\n")
	testbed.Eventually(t, 30*time.Second, func() error {
		schedule, next := d.controller.RefreshSchedule()
		want := time.Date(time.Now().Year()+1, time.January, 1, 0, 0, 0, 0, time.Local)
		if schedule != "0 0 1 1 *" || !next.Equal(want) {
			return fmt.Errorf("refresh schedule %q, next %s; want the new one, next %s", schedule, next, want)
		}
		return nil
	})

	// An invalid file.
	cfg = d.controller.Config()
	vol.write(t, "dns:\n  mode: everywhere\n")
	testbed.Eventually(t, 30*time.Second, func() error {
		if got := metric(t, d, `calico_pni_config_reloads_total{result="rejected"}`); !strings.HasSuffix(got, " 1") {
			return fmt.Errorf("rejected reloads: %q", got)
		}
		return configRejectedEvent(e, "reload-poll")
	})
	if d.controller.Config() != cfg {
		t.Error("a rejected configuration replaced the one in force")
	}
	if schedule, _ := d.controller.RefreshSchedule(); schedule != "0 0 1 1 *" {
		t.Errorf("the refresh schedule changed with a rejected configuration: %q", schedule)
	}
	if err := stateOf(e, "sandbox", policies.Isolated); err != nil {
		t.Error(err)
	}
}

// SIGHUP reloads the file at once; with the same content, nothing changes.
func TestConfigReloadBySIGHUP(t *testing.T) {
	e := testbed.Need(t, env)
	loadFixtureOnce(t, e)
	dir := t.TempDir()
	kubeconfig, err := e.WriteKubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("isolateUnassigned: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: this one after the process has stopped.
	t.Cleanup(func() { cleanupAfterDaemon(t, e, "calico-pni-reload-hup") })
	p := startProcess(t, "reload-hup", "run", "--kubeconfig", kubeconfig, "--config", cfgPath, "--config-poll", "1h",
		"--http-address", "127.0.0.1:0", "--pod-name", "reload-hup", "--pod-namespace", "default",
		"--leader-election-id", "calico-pni-reload-hup", "--debounce", "20ms", "--log-format", "text")
	testbed.Eventually(t, 30*time.Second, func() error { return stateOf(e, "sandbox", policies.Open) })

	p.signal(t, syscall.SIGHUP)
	testbed.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(p.logs.String(), "configuration unchanged") {
			return fmt.Errorf("no reload after SIGHUP yet")
		}
		return nil
	})
	if err := os.WriteFile(cfgPath, []byte("isolateUnassigned: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	testbed.Eventually(t, 30*time.Second, func() error { return stateOf(e, "sandbox", policies.Isolated) })
	if !strings.Contains(p.logs.String(), "configuration applied") {
		t.Errorf("the log does not say the configuration was applied:\n%s", p.logs.String())
	}
}

func waitPolls(t *testing.T, d *daemon, n int64) {
	t.Helper()
	start := d.polls.Load()
	testbed.Eventually(t, 30*time.Second, func() error {
		if got := d.polls.Load() - start; got < n {
			return fmt.Errorf("%d looks at the file so far", got)
		}
		return nil
	})
}

func stateOf(e *testbed.Env, name string, want policies.State) error {
	ns, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	st, err := policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
	if err != nil {
		return fmt.Errorf("namespace %s: status %q: %v", name, ns.Annotations[policies.StatusAnnotation], err)
	}
	if st.State != want {
		return fmt.Errorf("namespace %s is %s, want %s", name, st.State, want)
	}
	return nil
}

func configRejectedEvent(e *testbed.Env, pod string) error {
	events, err := e.Kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return err
	}
	for _, ev := range events.Items {
		if ev.Reason == "ConfigRejected" && strings.Contains(ev.Message, `dns.mode: "everywhere" is not a DNS mode`) {
			return nil
		}
	}
	return fmt.Errorf("no ConfigRejected event on %s yet (%d events)", pod, len(events.Items))
}

// cleanupAfterDaemon removes what a daemon wrote and its lease.
func cleanupAfterDaemon(t *testing.T, e *testbed.Env, lease string) {
	t.Helper()
	ctx := context.Background()
	_ = e.Kube.CoordinationV1().Leases("default").Delete(ctx, lease, metav1.DeleteOptions{})
	if _, err := cluster.Cleanup(ctx, e.Kube, e.Dynamic, discovery.NewDiscoveryClientForConfigOrDie(e.Config), cluster.CleanupOptions{Workers: 16}); err != nil {
		t.Error(err)
	}
}
