package charttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// env serves both Calico APIs, with ClusterInformation saying Calico 3.28,
// so that the chart's RBAC is exercised for both API groups.
var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Run(m, testbed.Options{CalicoV1: true, CalicoV3: true, CalicoVersion: "v3.28.5"}, &env))
}

const (
	// release and namespace are what Rancher's catalog uses (Chart.yaml's
	// catalog.cattle.io annotations).
	release   = "calico-pni"
	namespace = "calico-pni-system"
	// kubeVersion is the test API server's version (KUBE_VERSION in the
	// Makefile). helm template assumes an old Kubernetes unless told.
	kubeVersion = "v1.37.2"
	// vapAPI is what a cluster with ValidatingAdmissionPolicy (1.30+)
	// reports to helm install; helm template needs to be told.
	vapAPI = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
)

// repo returns the path of a file in the calico-pni checkout.
func repo(t testing.TB, parts ...string) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

func chartDir(t testing.TB) string { return repo(t, "charts", "calico-pni") }

// tool returns the path of a binary the Makefile builds into bin/. Tests
// that run one are integration tests: -short skips them, and without
// -short a missing binary fails the test with the make target to run.
func tool(t testing.TB, name, target string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs bin/%s: run without -short", name)
	}
	path := repo(t, "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: run `make %s` (or `make test`, which builds it)", path, target)
	}
	return path
}

func helmBin(t testing.TB) string { return tool(t, "helm", "tools") }

func calicoPNIBin(t testing.TB) string { return tool(t, "calico-pni", "build") }

// helm runs bin/helm and returns its stdout, or its stderr as the error.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm away from the user's helm and kube configuration.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// render runs helm template for the catalog's release and namespace on a
// cluster like the test API server, with extra helm flags (-f, --set, ...),
// and returns the objects, hooks included.
func render(t testing.TB, flags ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := renderErr(t, flags...)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := decode(out)
	if err != nil {
		t.Fatalf("the rendered chart is not valid YAML: %v", err)
	}
	return objects
}

func renderErr(t testing.TB, flags ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir(t), "--namespace", namespace, "--kube-version", kubeVersion, "--api-versions", vapAPI}
	return helm(t, append(args, flags...)...)
}

func decode(manifests string) ([]*unstructured.Unstructured, error) {
	return testbed.DecodeObjects([]byte(manifests))
}

// find returns the one rendered object of a kind and name.
func find(t testing.TB, objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == kind && o.GetName() == name {
			if found != nil {
				t.Fatalf("the chart renders %s %s twice", kind, name)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("the chart renders no %s %s", kind, name)
	}
	return found
}

func isHook(o *unstructured.Unstructured) bool {
	_, ok := o.GetAnnotations()["helm.sh/hook"]
	return ok
}
