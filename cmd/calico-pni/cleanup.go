package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/promotions"
)

func runCleanup(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster configuration, else $KUBECONFIG)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	stop := fs.String("stop-deployment", "", "first scale this Deployment (namespace/name) to zero and wait for its pods to go, so that a running daemon cannot undo the cleanup")
	workers := fs.Int("write-workers", 32, "writes made at once within one step")
	qps := fs.Float64("kube-api-qps", 500, "requests per second to the API server, sustained")
	burst := fs.Int("kube-api-burst", 1000, "requests to the API server in a burst")
	record := fs.String("promotions-configmap", "", "also delete this record of the promotion gate's promotions (namespace/name), if calico-pni made it")
	settle := fs.Duration("settle", cluster.DefaultSettle, "how long the policy deletes wait after the last namespace left isolation, for Calico's dataplane to apply it")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" cleanup [flags]\n\nRemoves everything calico-pni wrote: first every namespace leaves isolation (its\nisolated and staged labels go, in parallel), then the project labels and statuses go,\nthen, --settle later, the baseline policies, the other policies and calico-pni's tier.\nTouches only objects labelled app.kubernetes.io/managed-by=calico-pni. Stopped half\nway, it leaves no namespace cut off from its peers; run it again to finish.\nStop the daemon first (the chart's uninstall hook runs this after it has).\n\nExit codes: 0 done, 1 failed, 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if ns, name, ok := strings.Cut(*stop, "/"); *stop != "" && (!ok || ns == "" || name == "") {
		fmt.Fprintf(stderr, prog+" cleanup: --stop-deployment %q: give namespace/name\n", *stop)
		return exitUsage
	}
	if ns, name, ok := strings.Cut(*record, "/"); *record != "" && (!ok || ns == "" || name == "") {
		fmt.Fprintf(stderr, prog+" cleanup: --promotions-configmap %q: give namespace/name\n", *record)
		return exitUsage
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		fmt.Fprintln(stderr, prog+" cleanup:", err)
		return exitUsage
	}
	rest, err := restConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, prog+" cleanup:", err)
		return exitInvalid
	}
	rest.QPS, rest.Burst = float32(*qps), *burst
	kube, err := kubernetes.NewForConfig(rest)
	if err == nil {
		var dyn dynamic.Interface
		var disc discovery.DiscoveryInterface
		if dyn, err = dynamic.NewForConfig(rest); err == nil {
			if disc, err = discovery.NewDiscoveryClientForConfig(rest); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				defer cancel()
				if *stop != "" {
					ns, name, _ := strings.Cut(*stop, "/")
					err = cluster.StopDeployment(ctx, kube, ns, name, log)
				}
				if err == nil {
					var res cluster.CleanupResult
					res, err = cluster.Cleanup(ctx, kube, dyn, disc, cluster.CleanupOptions{Workers: *workers, Settle: *settle, Log: log})
					fmt.Fprintf(stdout, prog+" cleanup: released %d namespaces, deleted %d policies\n", res.Namespaces, res.Policies)
				}
				if err == nil && *record != "" {
					ns, name, _ := strings.Cut(*record, "/")
					err = promotions.Record{Kube: kube, Namespace: ns, Name: name}.Delete(ctx)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, prog+" cleanup:", err)
		return exitInvalid
	}
	return exitOK
}
