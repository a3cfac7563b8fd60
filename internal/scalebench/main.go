// Command scalebench measures calico-pni at scale on a real API server:
// it starts kube-apiserver and etcd with Calico's CRDs, creates a
// synthetic Rancher cluster, times a plain client making the writes of a
// cold start, runs the real `calico-pni run` as a child process and
// measures its cold start, its writes in a steady state, how fast it
// follows project moves and node address changes, mode switches and
// promotions of the whole cluster, its memory and CPU, and then the
// uninstall (`calico-pni cleanup`). docs/benchmarks.md gives the method
// and the figures.
//
//	go run ./internal/scalebench -namespaces 10000 -projects 1000 -nodes 100
//	go run ./internal/scalebench -calico 3.30 -config stage.yaml -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/calico-pni/calico-pni/config"
)

func main() {
	var o Options
	flag.IntVar(&o.Size.Namespaces, "namespaces", 1000, "namespaces in the synthetic cluster")
	flag.IntVar(&o.Size.Projects, "projects", 100, "user projects")
	flag.IntVar(&o.Size.Nodes, "nodes", 20, "nodes")
	flag.StringVar(&o.Calico, "calico", "3.28", "the Calico version the API server claims, with its CRDs: 3.28 (default tier only), 3.29 (tiers), 3.30 (tiers and staged policies)")
	configPath := flag.String("config", "", "calico-pni configuration file (default: the defaults); its kubeAPI.refreshSchedule is replaced")
	flag.IntVar(&o.UserPolicies, "user-netpols", 0, "users' Kubernetes NetworkPolicies spread over the user namespaces")
	flag.IntVar(&o.Moves, "moves", 200, "project moves to time")
	flag.IntVar(&o.NodeChanges, "node-changes", 50, "node address changes to time")
	flag.IntVar(&o.Explains, "explains", 0, "runs of calico-pni explain --kubeconfig to time, with calico-pni's policies in place")
	flag.IntVar(&o.Promote, "promote", 100, "staged projects promoted at once (Calico 3.30)")
	flag.DurationVar(&o.Steady, "steady", 2*time.Minute, "how long to watch an unchanged cluster for writes")
	flag.IntVar(&o.Workers, "workers", 32, "parallel requests of the plain client")
	o.Cleanup = DefaultCleanup
	flag.IntVar(&o.Cleanup.Workers, "cleanup-write-workers", o.Cleanup.Workers, "calico-pni cleanup --write-workers")
	qps := flag.Float64("cleanup-qps", float64(o.Cleanup.QPS), "calico-pni cleanup --kube-api-qps")
	flag.IntVar(&o.Cleanup.Burst, "cleanup-burst", o.Cleanup.Burst, "calico-pni cleanup --kube-api-burst")
	flag.DurationVar(&o.Cleanup.Settle, "cleanup-settle", o.Cleanup.Settle, "calico-pni cleanup --settle")
	runs := flag.Int("runs", 1, "runs, each on an API server of its own; the report gives the median and the range")
	daemonArgs := flag.String("daemon-args", "", "extra flags for calico-pni run, space separated")
	daemonEnv := flag.String("daemon-env", "", "KEY=VALUE settings for the daemon's environment only, space separated (GOMEMLIMIT=100MiB)")
	flag.StringVar(&o.ProfileDir, "profile-dir", "", "write a CPU profile of the cold start and a heap profile at the end here (the last run's)")
	flag.Parse()
	o.Cleanup.QPS = float32(*qps)
	o.DaemonArgs = strings.Fields(*daemonArgs)
	o.DaemonEnv = strings.Fields(*daemonEnv)
	o.Log = os.Stderr
	if *configPath != "" {
		cfg, err := config.Load(*configPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scalebench: -config:", err)
			os.Exit(2)
		}
		o.Config = cfg
	}
	// Interrupted, a run still stops its daemon, API server and etcd.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []*Result
	for i := range max(*runs, 1) {
		fmt.Fprintf(os.Stderr, "run %d of %d\n", i+1, max(*runs, 1))
		res, err := Run(ctx, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scalebench:", err)
			stop()
			os.Exit(1)
		}
		results = append(results, res)
	}
	report(os.Stdout, results)
}
