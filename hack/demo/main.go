// Command demo shows calico-pni at work on a local API server: it starts
// kube-apiserver and etcd with Calico's CRDs, loads the article-shaped
// cluster (testdata/article-cluster.yaml) and its workloads
// (testdata/article-workloads.yaml), runs `calico-pni run` as a child
// process, prints the policies and namespace statuses it wrote, lets a
// tenant try to open a wall and explains a connection, prints the matrix
// of projects, then moves a namespace to another project and shows the
// daemon follow.
//
// By default the API server stands for today's Calico (3.30, with tiers),
// so that calico-pni's `auto` enforcement puts its walls in a tier of its
// own; --default-tier stands for the article's Calico 3.28, without tiers,
// where the walls share the default tier with everyone's policies.
//
// Run it with `make demo` or `make demo-default-tier`, which build what
// it needs first.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

func main() {
	defaultTier := flag.Bool("default-tier", false, "stand for Calico 3.28, without tiers, as in the article: calico-pni's policies go into the default tier")
	flag.Parse()
	m := tierMode
	if *defaultTier {
		m = defaultTierMode
	}
	if err := demo(m); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// mode is the Calico the demo's API server stands for.
type mode struct {
	what string
	opts testbed.Options
	api  calico.API
	// tier is calico-pni's own tier, "" when its policies go into the
	// default tier.
	tier string
}

var (
	// tierMode: Calico 3.28's CRDs from the Go module with the Tier and
	// StagedGlobalNetworkPolicy CRDs and the spec.tier field of Calico
	// 3.29 and 3.30 (testdata/crds), ClusterInformation saying 3.30.
	tierMode = mode{
		what: "Calico 3.30's CRDs (3.28's, with the Tier and staged-policy CRDs and spec.tier of 3.29 and 3.30: testdata/crds)",
		opts: testbed.Options{CalicoV1: true, CalicoStaged: true, CalicoVersion: "v3.30.3"},
		api:  calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 30}},
		tier: "calico-pni",
	}
	defaultTierMode = mode{
		what: "Calico 3.28's CRDs (no tiers: calico-pni's policies go into the default tier)",
		opts: testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"},
		api:  calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}},
	}
)

// stored is the name Calico stores one of calico-pni's policies under.
func (m mode) stored(name string) string {
	if m.tier == "" {
		return m.api.StoredName(policies.NamePrefix + name)
	}
	return m.api.StoredNameIn(m.tier, policies.TierNamePrefix+name)
}

func demo(m mode) error {
	root, err := testbed.RepoRoot()
	if err != nil {
		return err
	}
	step("Starting kube-apiserver and etcd with " + m.what)
	env, err := testbed.Start(m.opts)
	if err != nil {
		return err
	}
	defer env.Stop()
	ctx := context.Background()
	fixture := filepath.Join(root, "testdata", "article-cluster.yaml")
	workloads := filepath.Join(root, "testdata", "article-workloads.yaml")
	if err := env.LoadCluster(ctx, fixture); err != nil {
		return err
	}
	if err := env.LoadWorkloads(ctx, workloads); err != nil {
		return err
	}
	fmt.Printf("Loaded %s: two projects (p-b6jcw, p-mcb29), the System project (p-7xq2n), four nodes;\nand %s: pods with their addresses, and the users' own policies.\n", rel(root, fixture), rel(root, workloads))

	dir, err := os.MkdirTemp("", "calico-pni-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig, err := env.WriteKubeconfig(dir)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "calico-pni.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	binary := filepath.Join(root, "bin", "calico-pni")
	args := []string{"run", "--kubeconfig", kubeconfig, "--leader-elect=false", "--log-format", "text",
		"--http-address", fmt.Sprintf("127.0.0.1:%d", port), "--debounce", "50ms"}
	step("Running: calico-pni " + strings.Join(args, " "))
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w (run `make build` first)", err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	started := time.Now()
	if err := waitReady(port); err != nil {
		return fmt.Errorf("%w; daemon log:\n%s", err, readFile(logPath))
	}
	fmt.Printf("Ready after its first pass (%s after start).\n", time.Since(started).Round(time.Millisecond))

	run := func(args ...string) error { return runCommand(binary, kubeconfig, args...) }
	if m.tier != "" {
		step("The tier it wrote: " + m.tier + ", before the default tier where every Kubernetes NetworkPolicy lives")
		if err := printTier(ctx, env, m); err != nil {
			return err
		}
	}
	step("Calico policies it wrote (crd.projectcalico.org/v1, named as Calico " + m.api.Version.String() + " stores them)")
	if err := printPolicies(ctx, env, m); err != nil {
		return err
	}
	step("Two of them in full")
	for _, name := range []string{m.stored("project-p-b6jcw"), m.stored("allow-kube-api")} {
		if err := printPolicyYAML(ctx, env, m, name); err != nil {
			return err
		}
	}
	step("Namespace status (annotation calico-pni.io/status): calico-pni status --kubeconfig ...")
	if err := printStatuses(ctx, env, binary, kubeconfig); err != nil {
		return err
	}
	if err := openWall(ctx, env, m, run, logPath); err != nil {
		return err
	}
	step("Who can reach whom, project by project: calico-pni matrix --by project --kubeconfig ...")
	if err := run("matrix", "--by", "project"); err != nil {
		return err
	}
	if err := moveNamespace(ctx, env, m, logPath); err != nil {
		return err
	}
	step("What the daemon logged")
	printLog(logPath)
	fmt.Println("\nDone. `make test` runs the full test suite; docs/ explains each policy and the design.")
	return nil
}

// moveNamespace moves shop-batch to a new project, as Rancher would, and
// waits for the daemon to follow.
func moveNamespace(ctx context.Context, env *testbed.Env, m mode, logPath string) error {
	step("Moving namespace shop-batch from project p-b6jcw to a new project p-q8r2t (as Rancher would)")
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, "shop-batch", metav1.GetOptions{})
	if err != nil {
		return err
	}
	ns.Annotations["field.cattle.io/projectId"] = "c-m4x7q:p-q8r2t"
	ns.Labels["field.cattle.io/projectId"] = "p-q8r2t"
	moved := time.Now()
	if _, err := env.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		return err
	}
	var st policies.Status
	for time.Since(moved) < 30*time.Second {
		ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, "shop-batch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st, _ = policies.DecodeStatus(ns.Annotations[policies.StatusAnnotation])
		if st.Project == "p-q8r2t" && ns.Labels[policies.ProjectLabel] == "p-q8r2t" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Project != "p-q8r2t" {
		return fmt.Errorf("the daemon did not follow the move; log:\n%s", readFile(logPath))
	}
	fmt.Printf("Followed in %s: shop-batch is %s in project %s, selected by %s.\n",
		time.Since(moved).Round(time.Millisecond), st.State, st.Project, strings.Join(st.Policies, ", "))
	step("Policies now")
	return printPolicies(ctx, env, m)
}

func step(s string) { fmt.Printf("\n==> %s\n\n", s) }

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(port int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("calico-pni did not become ready within a minute")
}

func managed(ctx context.Context, env *testbed.Env, m mode) ([]unstructured.Unstructured, error) {
	list, err := env.Dynamic.Resource(m.api.Resource("GlobalNetworkPolicy")).List(ctx, metav1.ListOptions{LabelSelector: calico.ManagedByLabel + "=" + calico.ManagedByValue})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list.Items, func(a, b unstructured.Unstructured) int { return strings.Compare(a.GetName(), b.GetName()) })
	return list.Items, nil
}

func printPolicies(ctx context.Context, env *testbed.Env, m mode) error {
	items, err := managed(ctx, env, m)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCLASS\tTYPES\tSELECTS NAMESPACES")
	for _, u := range items {
		spec, err := calico.SpecOf(&u)
		if err != nil {
			return err
		}
		var types []string
		for _, t := range spec.Types {
			types = append(types, string(t))
		}
		sel := spec.NamespaceSelector
		if spec.Selector != "" {
			sel += " (pods: " + truncate(spec.Selector, 40) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.GetName(), u.GetLabels()[calico.ClassLabel], strings.Join(types, ","), truncate(sel, 90))
	}
	return w.Flush()
}

func printPolicyYAML(ctx context.Context, env *testbed.Env, m mode, name string) error {
	u, err := env.Dynamic.Resource(m.api.Resource("GlobalNetworkPolicy")).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	out := map[string]any{"metadata": map[string]any{"name": u.GetName(), "labels": u.GetLabels(), "annotations": u.GetAnnotations()}, "spec": u.Object["spec"]}
	b, err := yaml.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Printf("# %s\n%s\n", name, b)
	return nil
}

// printStatuses runs `calico-pni status`, the command users run, so that
// the demo shows its table rather than a copy of it. It exits 1 here
// because the fixture's intruder namespace is in error, as it should be.
func printStatuses(ctx context.Context, env *testbed.Env, binary, kubeconfig string) error {
	cmd := exec.Command(binary, "status", "--kubeconfig", kubeconfig)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return fmt.Errorf("calico-pni status: %w", err)
		}
		fmt.Println("(exit status 1: a namespace is in error, so a pipeline gated on `calico-pni status` stops here)")
	}
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		return err
	}
	var pretty map[string]any
	_ = json.Unmarshal([]byte(ns.Annotations[policies.StatusAnnotation]), &pretty)
	b, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Printf("\nThe status of namespace shop in full:\n%s\n", b)
	return nil
}

func printLog(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "created policy") || strings.Contains(line, "updated policy") {
			continue // one line per write; the summaries below count them
		}
		fmt.Println("  " + truncate(line, 200))
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
