package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// asCommandEnv makes this package's test binary run as `calico-pni` with
// the JSON-encoded arguments it holds (see TestMain).
const asCommandEnv = "CALICO_PNI_TEST_AS_COMMAND"

// process is calico-pni running as a process of its own.
type process struct {
	name string
	cmd  *exec.Cmd
	logs *testbed.Buffer
	done chan struct{}
}

// startProcess runs calico-pni with args; the test's cleanup kills it.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	encoded, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, logs: &testbed.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), asCommandEnv+"="+string(encoded))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", p.name, p.logs.String())
		}
	})
	return p
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// waitStopped waits until every thread of the process is stopped by a
// SIGSTOP it was sent. kill(2) returns once the signal is queued; a thread
// running on another CPU stops a moment later and may still send a
// request in that moment.
func (p *process) waitStopped(t *testing.T) {
	t.Helper()
	testbed.Eventually(t, 10*time.Second, func() error {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("%s: no threads in /proc: %v", p.name, err)
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(task)
			if err != nil {
				return err
			}
			// The state follows the command name, which is in
			// parentheses: "pid (comm) S ...".
			i := strings.LastIndexByte(string(stat), ')')
			if i < 0 || i+2 >= len(stat) {
				return fmt.Errorf("%s: unreadable %s", p.name, task)
			}
			if state := stat[i+2]; state != 'T' && state != 't' {
				return fmt.Errorf("%s: thread %s is in state %c, not stopped", p.name, filepath.Base(filepath.Dir(task)), state)
			}
		}
		return nil
	})
}
