package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/calico-pni/calico-pni/rancher"
)

// ExplainRun is one `calico-pni explain --kubeconfig` of the bench: its
// wall time and the peak resident memory of the process, as the kernel
// counts it (getrusage's ru_maxrss).
type ExplainRun struct {
	Took    time.Duration
	PeakRSS int64 // bytes
}

// timeExplain runs `calico-pni explain --kubeconfig` n times against the
// bench's API server, with calico-pni's policies in place, one
// connection between the first two user namespaces each time: the live
// read of every namespace, pod, policy and node, then one evaluation. The
// bench's cluster has no pods (the daemon does not read them), so the
// read is of namespaces, policies, nodes and services only.
func (b *bench) timeExplain(ctx context.Context, binary string, n int) ([]ExplainRun, error) {
	if n == 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "calico-pni-bench-explain-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	kubeconfig, err := b.env.WriteKubeconfig(dir)
	if err != nil {
		return nil, err
	}
	var from, to string
	for _, ns := range b.cluster.Namespaces {
		if p := ns.Labels[rancher.ProjectIDKey]; p == "" || p == b.cluster.SystemProject {
			continue
		}
		if from == "" {
			from = ns.Name
		} else if to == "" {
			to = ns.Name
			break
		}
	}
	if to == "" {
		return nil, fmt.Errorf("explain: the synthetic cluster has fewer than two user namespaces")
	}
	runs := make([]ExplainRun, 0, n)
	for i := 0; i < n; i++ {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, binary, "explain", "--kubeconfig", kubeconfig, "--from", from, "--to", to, "--port", "8080")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("explain --kubeconfig --from %s --to %s: %w\n%s", from, to, err, stderr.String())
		}
		run := ExplainRun{Took: took}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			run.PeakRSS = ru.Maxrss << 10 // Linux reports KiB
		}
		b.logf("explain --kubeconfig %s -> %s: %s, peak RSS %d MiB", from, to, took.Round(time.Millisecond), run.PeakRSS>>20)
		runs = append(runs, run)
	}
	return runs, nil
}
