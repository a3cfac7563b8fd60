package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/objects"
	"github.com/calico-pni/calico-pni/policies"
)

func runRender(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var paths files
	fs.Var(&paths, "f", "read the objects from this YAML or JSON file ('-' for standard input); may be given several times. The generator reads Namespaces, Nodes, Services, Pods, the EndpointSlices of default/kubernetes and Rancher's NetworkPolicies, e.g. from `kubectl get ns,nodes,svc,pods,endpointslices,networkpolicies -A -o yaml`; explain's and matrix's files serve as they are")
	kubeconfig := fs.String("kubeconfig", "", "read the objects from the cluster of this kubeconfig instead of a file")
	api := fs.String("api", "", "Calico API to render for: v3 (projectcalico.org/v3) or v1 (crd.projectcalico.org/v1). Default: v3 for a file, detected for a cluster")
	calicoVersion := fs.String("calico-version", "", "Calico version (e.g. v3.28.5); decides the names of v1 objects. Default: read from the cluster's ClusterInformation")
	configPath := fs.String("config", "", "calico-pni configuration file (default: built-in defaults)")
	withNamespaces := fs.Bool("namespaces", true, "also print the namespaces with the calico-pni labels and status they get")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" render (-f FILE | --kubeconfig FILE) [flags]\n\nPrints, as YAML for `kubectl apply -f -`, the Calico policies calico-pni would write\nand the labels it would put on namespaces, in the order that is safe to apply them.\n\nExit codes: 0 done, 1 invalid input, 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if (len(paths) == 0) == (*kubeconfig == "") {
		fmt.Fprintln(stderr, prog+" render: give exactly one of -f and --kubeconfig")
		return exitUsage
	}
	if *api != "" && *api != "v1" && *api != "v3" {
		fmt.Fprintf(stderr, prog+" render: --api %q: use v1 or v3\n", *api)
		return exitUsage
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, prog+" render:", err)
		return exitInvalid
	}

	var snap policies.Snapshot
	var target calico.API
	if len(paths) > 0 {
		snap, target, err = renderFromFiles(paths, *api, *calicoVersion, stdin, stderr)
	} else {
		snap, target, err = renderFromCluster(*kubeconfig, *api, *calicoVersion)
	}
	if err != nil {
		fmt.Fprintln(stderr, prog+" render:", err)
		return exitInvalid
	}

	snap.CalicoVersion = target.Version
	d := policies.Generate(snap, cfg)
	if !target.Staged && slices.ContainsFunc(d.Policies, func(p calico.Policy) bool { return p.Staged }) {
		// The daemon refuses the same pass (sync/pass.go): what render
		// printed could not be applied.
		fmt.Fprintln(stderr, prog+" render:", target.StagingUnserved())
		return exitInvalid
	}
	for _, p := range d.Problems {
		fmt.Fprintln(stderr, prog+" render: warning:", p)
	}
	out, err := policies.YAML(d.Manifests(target, *withNamespaces))
	if err != nil {
		fmt.Fprintln(stderr, prog+" render:", err)
		return exitInvalid
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, prog+" render:", err)
		return exitInvalid
	}
	if len(d.Invalid) > 0 {
		return exitInvalid
	}
	return exitOK
}

// renderFromFiles reads the generator's input from files with the one
// reader of cluster files (package objects), as explain and matrix do.
// Without --calico-version, a ClusterInformation among the objects gives
// the version.
func renderFromFiles(paths []string, api, version string, stdin io.Reader, stderr io.Writer) (policies.Snapshot, calico.API, error) {
	r := objects.NewReader()
	r.KeepSnapshot = true
	for _, path := range paths {
		name, data, err := readInputFile(path, stdin)
		if err != nil {
			return policies.Snapshot{}, calico.API{}, err
		}
		if err := r.ReadFile(name, data); err != nil {
			return policies.Snapshot{}, calico.API{}, err
		}
	}
	set := r.Finish()
	for _, n := range set.Notes {
		fmt.Fprintln(stderr, prog+" render: note:", n)
	}
	if version == "" {
		version = set.CalicoVersion
	}
	snap := policies.Snapshot{}
	if set.Snapshot != nil {
		snap = *set.Snapshot
	}
	var err error
	target := calico.API{Group: calico.GroupV3}
	if api == "v1" {
		if version == "" {
			return snap, target, fmt.Errorf("--api v1 needs --calico-version: v1 objects are stored as default.<name> up to Calico 3.31 and as <name> from 3.32")
		}
		target.Group = calico.GroupV1
	}
	if version != "" {
		if target.Version, err = calico.ParseVersion(version); err != nil {
			return snap, target, fmt.Errorf("--calico-version: %w", err)
		}
	}
	target.Staged = servesStaged(target.Version)
	return snap, target, nil
}

// servesStaged says, for a Calico known only by its version, whether it
// serves staged policies: from 3.30. Without a version nothing can be
// said, and render prints what it was asked for.
func servesStaged(v calico.Version) bool {
	return v == (calico.Version{}) || v.AtLeast(3, 30)
}

func renderFromCluster(kubeconfig, api, version string) (policies.Snapshot, calico.API, error) {
	rest, err := restConfig(kubeconfig)
	if err != nil {
		return policies.Snapshot{}, calico.API{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return policies.Snapshot{}, calico.API{}, err
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return policies.Snapshot{}, calico.API{}, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rest)
	if err != nil {
		return policies.Snapshot{}, calico.API{}, err
	}
	snap, err := cluster.ListSnapshot(ctx, kube)
	if err != nil {
		return snap, calico.API{}, err
	}
	var target calico.API
	switch api {
	case "":
		target, err = cluster.DetectAPI(ctx, disc, dyn, version)
	case "v3":
		target.Group = calico.GroupV3
		if version != "" {
			target.Version, err = calico.ParseVersion(version)
		}
		target.Staged = servesStaged(target.Version)
	case "v1":
		target, err = cluster.DetectAPI(ctx, disc, dyn, version)
		target.Group = calico.GroupV1
	}
	return snap, target, err
}

// readInputFile reads the file at path, or standard input for "-", and
// names it as messages should.
func readInputFile(path string, stdin io.Reader) (name string, data []byte, err error) {
	if path == "-" {
		data, err = io.ReadAll(stdin)
		return "standard input", data, err
	}
	data, err = os.ReadFile(path)
	return path, data, err
}
