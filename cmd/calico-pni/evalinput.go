package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/objects"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/rancher"
	"github.com/calico-pni/calico-pni/report"
)

// evaluatedKinds is the kubectl command whose output explain and matrix
// read.
const evaluatedKinds = "kubectl get namespaces,pods,nodes,services,endpointslices,serviceaccounts,networkpolicies,globalnetworkpolicies.crd.projectcalico.org,networkpolicies.crd.projectcalico.org,tiers.crd.projectcalico.org -A -o yaml"

// oneShotGC undoes, for a command that reads a cluster once and exits,
// the daemon's lower GC target set in main: explain and matrix hold the
// whole cluster for a second and are not under a pod memory limit. GOGC in
// the environment still decides when it is set.
func oneShotGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(100)
	}
}

// files is a flag that may be given several times.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

// evalInput holds the flags explain and matrix share: where the objects
// come from and which policies to evaluate.
type evalInput struct {
	files         files
	kubeconfig    string
	configPath    string
	calicoVersion string
	preview       bool
	staged        bool
	// withoutRancher leaves Rancher's own isolation out of the state with
	// calico-pni's policies.
	withoutRancher bool
}

func (in *evalInput) register(fs *flag.FlagSet) {
	fs.Var(&in.files, "f", "read the objects from this YAML or JSON file ('-' for standard input); may be given several times. Make it with:\n"+evaluatedKinds)
	fs.StringVar(&in.kubeconfig, "kubeconfig", "", "read the objects from the cluster of this kubeconfig instead of files")
	fs.StringVar(&in.configPath, "config", "", "calico-pni configuration file for --preview and for the projects of matrix --by project (trustLabelOnly, systemProject); default: built-in defaults")
	fs.StringVar(&in.calicoVersion, "calico-version", "", "Calico version for --preview (e.g. v3.28.5); default: from a ClusterInformation in the input, as the cluster reports it")
	fs.BoolVar(&in.preview, "preview", false, "evaluate as if calico-pni's policies and namespace labels, computed as `calico-pni render` computes them, were in place (replacing what calico-pni wrote before)")
	fs.BoolVar(&in.staged, "staged", false, "evaluate staged policies as if they were enforced")
	fs.BoolVar(&in.withoutRancher, "without-rancher", false, "with --preview or --compare: leave the NetworkPolicies of Rancher's own project isolation (label cattle.io/creator: norman) out of the state with calico-pni's policies, as when that isolation is switched off in Rancher")
}

// check reports usage errors.
func (in *evalInput) check() error {
	if (len(in.files) == 0) == (in.kubeconfig == "") {
		return errors.New("give -f FILE or --kubeconfig PATH (one of them)")
	}
	return nil
}

// input is what explain and matrix evaluate.
type input struct {
	set   *objects.Set
	today *evaluator.Cluster
	// preview is the cluster under calico-pni's policies, when asked for,
	// and alone the same without Rancher's isolation (--without-rancher).
	preview, alone *evaluator.Cluster
	api            calico.API
	notes          []string
	// cfg is the configuration of --config (the defaults without it).
	cfg *config.Config
}

// projects sorts the namespaces read into projects as calico-pni's
// generator does under the configuration given.
func (in *input) projects() policies.Projects {
	cfg := in.cfg
	if cfg == nil {
		cfg = config.Default()
	}
	return policies.GroupProjects(cfg, in.today.Namespaces)
}

// load reads the objects and, with wantPreview, computes calico-pni's
// policies for them.
func (in *evalInput) load(stdin io.Reader, wantPreview bool) (*input, error) {
	r := objects.NewReader()
	r.KeepSnapshot = wantPreview
	out := &input{}
	if in.kubeconfig != "" {
		api, err := readCluster(in.kubeconfig, r)
		if err != nil {
			return nil, err
		}
		out.api = api
	} else {
		for _, path := range in.files {
			name, data, err := readInputFile(path, stdin)
			if err != nil {
				return nil, err
			}
			if err := r.ReadFile(name, data); err != nil {
				return nil, err
			}
		}
	}
	out.set = r.Finish()
	out.today = &out.set.Cluster
	out.notes = out.set.Notes
	cfg, err := config.Load(in.configPath)
	if err != nil {
		return nil, err
	}
	out.cfg = cfg
	if !wantPreview {
		return out, nil
	}
	version := out.api.Version
	text := in.calicoVersion
	if text == "" && version == (calico.Version{}) {
		text = out.set.CalicoVersion
	}
	if text != "" {
		if version, err = calico.ParseVersion(text); err != nil {
			return nil, fmt.Errorf("--calico-version: %w", err)
		}
	}
	preview, d, err := objects.Preview(out.set, cfg, version)
	if err != nil {
		return nil, err
	}
	for _, p := range d.Invalid {
		out.notes = append(out.notes, fmt.Sprintf("calico-pni would not write %s: %v", p.Name, p.Err))
	}
	out.preview = preview
	if in.withoutRancher {
		bare, n := objects.WithoutRancher(out.set)
		if n == 0 {
			out.notes = append(out.notes, "the input has no NetworkPolicy of Rancher's project isolation (label "+rancher.CreatorLabel+": "+rancher.CreatorNorman+"): --without-rancher leaves nothing out")
		}
		if out.alone, _, err = objects.Preview(bare, cfg, version); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// after is the state with calico-pni's policies: without Rancher's
// isolation with --without-rancher.
func (in *evalInput) after(loaded *input) *evaluator.Cluster {
	if in.withoutRancher {
		return loaded.alone
	}
	return loaded.preview
}

// owners names the policies of Rancher's isolation for the report.
func owners(loaded *input) report.Owners {
	if len(loaded.set.Rancher) == 0 {
		return nil
	}
	out := make(report.Owners, len(loaded.set.Rancher))
	for key, p := range loaded.set.Rancher {
		out[key] = report.Owner{Name: p.Title(), Description: p.Description()}
	}
	return out
}

// index builds the evaluator's index of a cluster.
func (in *evalInput) index(c *evaluator.Cluster) *evaluator.Index {
	var opts []evaluator.Option
	if in.staged {
		opts = append(opts, evaluator.WithStaged())
	}
	return evaluator.NewIndex(c, opts...)
}

// readCluster lists the objects from a live cluster.
func readCluster(kubeconfig string, r *objects.Reader) (calico.API, error) {
	rest, err := restConfig(kubeconfig)
	if err != nil {
		return calico.API{}, err
	}
	rest.QPS, rest.Burst = 100, 200
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return calico.API{}, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rest)
	if err != nil {
		return calico.API{}, err
	}
	return cluster.ListObjects(ctx, disc, dyn, r.Add)
}
