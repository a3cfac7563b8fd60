// Command soak is calico-pni's randomized fault soak. It runs two replicas
// of the daemon (as processes, with leader election) against a real
// kube-apiserver with Calico's CRDs and a synthetic Rancher cluster, and
// applies hundreds of random operations — project moves, several
// namespaces moving at once, two namespaces swapping projects, moves into
// and out of the System project, new and emptied projects, namespaces
// created and deleted, node changes, opt-outs, configuration changes that
// add and remove classes of policy, an uninstall (`calico-pni cleanup`)
// followed by a new install — interleaved with faults: API server
// restarts, the leader killed, a cleanup killed half way, and a second
// writer changing calico-pni's own objects.
//
// After every operation it waits for the cluster to be quiet and checks
// that it holds exactly what `calico-pni render` computes for it, and that
// a table of verdicts the soak states itself (within a project allowed,
// across projects and from the internet denied, the System project and
// Prometheus admitted everywhere, DNS answered, everything open after an
// uninstall) holds. Across the API server's audit log it checks, after
// every single committed write of the daemons and of cleanup, that no
// connection between the probes is denied that both the state before the
// operation and the state after it allow, nor allowed that both deny. Two
// evaluators judge each state: calico-pni's own and the reference
// evaluator of internal/replay, which shares no code with it. It also
// checks that the two replicas never wrote at once.
//
//	go run ./internal/soak -seed 1 -ops 300
//
// A failure prints the seed and the operation to replay it. The method and
// figures are in docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o options
	flag.Int64Var(&o.Seed, "seed", time.Now().UnixNano()%1_000_000, "random seed: the same seed replays the same operations")
	flag.IntVar(&o.Ops, "ops", 300, "operations to apply")
	flag.IntVar(&o.Namespaces, "namespaces", 30, "namespaces of the synthetic cluster")
	flag.IntVar(&o.Projects, "projects", 6, "user projects of the synthetic cluster")
	flag.IntVar(&o.Nodes, "nodes", 3, "nodes of the synthetic cluster")
	flag.StringVar(&o.CalicoVersion, "calico-version", "v3.28.5", "the Calico version the test API server claims: v3.28 (default tier), v3.29 (tiers), v3.30 (tiers and staged policies)")
	flag.BoolVar(&o.Verbose, "v", false, "print every operation, and the writes of the first one that breaks the invariant")
	flag.BoolVar(&o.Keep, "keep", false, "keep the run's directory (the replicas' logs, the configuration) and print its path")
	flag.Parse()
	rep, err := run(o, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	})
	if rep != nil {
		fmt.Print(rep.String())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if rep.failed() {
		os.Exit(1)
	}
}
