package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

// daemon is calico-pni run as a child process.
type daemon struct {
	cmd     *exec.Cmd
	port    int
	log     string
	started time.Time
	exited  chan struct{}
	// config is the configuration file the daemon reads.
	config string
}

func startDaemon(binary string, env *testbed.Env, cfg *config.Config, dir, logDir string, extra, environ []string) (*daemon, error) {
	kubeconfig, err := env.WriteKubeconfig(dir)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := &daemon{port: port, log: filepath.Join(logDir, "daemon.log"), config: cfgPath}
	logFile, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "--kubeconfig", kubeconfig, "--config", cfgPath, "--leader-elect=false",
		"--http-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn"}, extra...)
	d.cmd = exec.Command(binary, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if len(environ) > 0 {
		d.cmd.Env = append(os.Environ(), environ...)
	}
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.exited = make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
}

// reload writes a new configuration and tells the daemon with SIGHUP, as
// a ConfigMap update and `kill -HUP` would.
func (d *daemon) reload(cfg *config.Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	tmp := d.config + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, d.config); err != nil {
		return err
	}
	return d.cmd.Process.Signal(syscall.SIGHUP)
}

// writes returns how many writes the daemon has made so far.
func (d *daemon) writes() (int, error) {
	m, err := d.metrics()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, n := range writesByKind(m) {
		total += n
	}
	return total, nil
}

// quiet waits until the daemon's write count has not moved for a while,
// and returns it.
func (d *daemon) quiet(hold, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	last, err := d.writes()
	since := time.Now()
	for err == nil && time.Since(since) < hold {
		if time.Now().After(deadline) {
			return last, fmt.Errorf("the daemon still writes after %s", timeout)
		}
		time.Sleep(250 * time.Millisecond)
		var n int
		if n, err = d.writes(); n != last {
			last, since = n, time.Now()
		}
	}
	return last, err
}

func (d *daemon) get(path string) (int, string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (d *daemon) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if code, _, err := d.get("/readyz"); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the daemon did not become ready")
}

func (d *daemon) metrics() (string, error) {
	_, body, err := d.get("/metrics")
	return body, err
}

// writesByKind sums calico_pni_writes_total by "verb kind".
func writesByKind(metrics string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "calico_pni_writes_total{") {
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimPrefix(line, "calico_pni_writes_total{"), "} ")
		n, _ := strconv.ParseFloat(value, 64)
		if n == 0 {
			continue
		}
		var kind, verb string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			if k == "kind" {
				kind = v
			} else if k == "verb" {
				verb = v
			}
		}
		out[verb+" "+kind] += int(n)
	}
	return out
}

func sumMetric(metrics, prefix string) float64 {
	total := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, prefix) {
			_, value, _ := strings.Cut(line, "} ")
			n, _ := strconv.ParseFloat(value, 64)
			total += n
		}
	}
	return total
}

// peakRSS reads the daemon's high-water resident set (VmHWM) from /proc.
func (d *daemon) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// cpuSeconds reads the daemon's user and system CPU time from /proc.
func (d *daemon) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name in parentheses; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // clock ticks: 100 per second on Linux
}
