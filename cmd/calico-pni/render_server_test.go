package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// decodeRendered splits render's output into objects.
func decodeRendered(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(strings.TrimSpace(out), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("render printed invalid YAML: %v\n%s", err, doc)
		}
		objs = append(objs, u)
	}
	return objs
}

// TestRenderedPoliciesOnRealServer writes every policy render produces for
// the fixture into a real API server with Calico's CRDs (which check each
// object against Calico's own schema and prune fields the schema does not
// know), reads each back and compares it whole, for the three ways
// calico-pni names and writes policies.
func TestRenderedPoliciesOnRealServer(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	dir := t.TempDir()
	defaultTier := filepath.Join(dir, "default-tier.yaml")
	if err := os.WriteFile(defaultTier, []byte("enforcement: default-tier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	modes := []struct {
		name   string
		args   []string
		group  string
		prefix string // of every policy's stored name
	}{
		{"v1 on Calico 3.28 (default. prefix)", []string{"--api", "v1", "--calico-version", "v3.28.5"}, "crd.projectcalico.org/v1", "default.pni-"},
		{"v1 on Calico 3.32, default tier (plain names)", []string{"--api", "v1", "--calico-version", "v3.32.0", "--config", defaultTier}, "crd.projectcalico.org/v1", "pni-"},
		{"v3, default tier", []string{"--api", "v3", "--config", defaultTier}, "projectcalico.org/v3", "pni-"},
		{"v1 on Calico 3.30, calico-pni's tier (calico-pni. prefix)", []string{"--api", "v1", "--calico-version", "v3.30.2"}, "crd.projectcalico.org/v1", "calico-pni.pni-tier-"},
		{"v3 on Calico 3.30, calico-pni's tier (calico-pni. prefix)", []string{"--api", "v3", "--calico-version", "v3.30.2"}, "projectcalico.org/v3", "calico-pni.pni-tier-"},
		{"v3 on Calico 3.32, calico-pni's tier (plain names)", []string{"--api", "v3", "--calico-version", "v3.32.1"}, "projectcalico.org/v3", "pni-tier-"},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			code, stdout, stderr := calicoPNI(t, "", append([]string{"render", "-f", fixture, "--namespaces=false"}, mode.args...)...)
			if code != exitOK {
				t.Fatalf("render: exit %d: %s", code, stderr)
			}
			objs := decodeRendered(t, stdout)
			if len(objs) < 15 {
				t.Fatalf("only %d objects rendered", len(objs))
			}
			for _, want := range objs {
				if want.GetAPIVersion() != mode.group {
					t.Fatalf("%s has apiVersion %s", want.GetName(), want.GetAPIVersion())
				}
				resource := "globalnetworkpolicies"
				if want.GetKind() == "Tier" {
					resource = "tiers"
				} else if !strings.HasPrefix(want.GetName(), mode.prefix) {
					t.Errorf("%s: stored name does not start with %s", want.GetName(), mode.prefix)
				}
				gv, _ := schema.ParseGroupVersion(want.GetAPIVersion())
				res := e.Dynamic.Resource(gv.WithResource(resource))
				if _, err := res.Create(ctx, want, metav1.CreateOptions{}); err != nil {
					t.Fatalf("creating %s: %v", want.GetName(), err)
				}
				t.Cleanup(func() { _ = res.Delete(context.Background(), want.GetName(), metav1.DeleteOptions{}) })
				got, err := res.Get(ctx, want.GetName(), metav1.GetOptions{})
				if err != nil {
					t.Fatalf("reading %s back: %v", want.GetName(), err)
				}
				compareWhole(t, want, got)
			}
		})
	}
}

// compareWhole compares everything calico-pni wrote: apiVersion, kind,
// name, labels, annotations and the whole spec.
func compareWhole(t *testing.T, want, got *unstructured.Unstructured) {
	t.Helper()
	if got.GetAPIVersion() != want.GetAPIVersion() || got.GetKind() != want.GetKind() || got.GetName() != want.GetName() {
		t.Errorf("%s: read back as %s %s %s", want.GetName(), got.GetAPIVersion(), got.GetKind(), got.GetName())
	}
	if !reflect.DeepEqual(got.GetLabels(), want.GetLabels()) || !reflect.DeepEqual(got.GetAnnotations(), want.GetAnnotations()) {
		t.Errorf("%s: metadata read back as labels %v annotations %v", want.GetName(), got.GetLabels(), got.GetAnnotations())
	}
	wantSpec, _ := json.Marshal(want.Object["spec"])
	gotSpec, _ := json.Marshal(got.Object["spec"])
	if string(wantSpec) != string(gotSpec) {
		t.Errorf("%s: spec changed on the server (pruned or defaulted):\nwrote %s\nread  %s", want.GetName(), wantSpec, gotSpec)
	}
}

// TestRenderFromCluster reads the fixture from the real server instead of
// the file: detection picks projectcalico.org/v3 (served here), and the
// policies are the same as rendered from the file.
func TestRenderFromCluster(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	loadFixtureOnce(t, e)
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, fromCluster, stderr := calicoPNI(t, "", "render", "--kubeconfig", kubeconfig, "--namespaces=false")
	if code != exitOK {
		t.Fatalf("render --kubeconfig: exit %d: %s", code, stderr)
	}
	code, fromFile, stderr := calicoPNI(t, "", "render", "-f", fixture, "--namespaces=false", "--api", "v3", "--calico-version", "v3.28.5")
	if code != exitOK {
		t.Fatalf("render -f: exit %d: %s", code, stderr)
	}
	if fromCluster != fromFile {
		t.Errorf("render from the cluster differs from render from the file:\n%s", firstDifference(fromFile, fromCluster))
	}

	// With namespaces: the status of a fixture namespace read from the
	// cluster is the one the file gives, and applying the rendered
	// namespace objects sets the labels and status on the server.
	code, out, stderr := calicoPNI(t, "", "render", "--kubeconfig", kubeconfig)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, u := range decodeRendered(t, out) {
		if u.GetKind() != "Namespace" || u.GetName() != "shop" {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": u.GetLabels(), "annotations": u.GetAnnotations()}})
		t.Cleanup(func() {
			undo := []byte(`{"metadata":{"labels":{"calico-pni.io/isolated":null,"calico-pni.io/project":null},"annotations":{"calico-pni.io/status":null}}}`)
			if _, err := e.Kube.CoreV1().Namespaces().Patch(context.Background(), "shop", types.MergePatchType, undo, metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
		})
		if _, err := e.Kube.CoreV1().Namespaces().Patch(ctx, "shop", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		live, err := e.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := policies.DecodeStatus(live.Annotations[policies.StatusAnnotation])
		if err != nil || st.State != policies.Isolated || st.Project != "p-b6jcw" || live.Labels[policies.IsolatedLabel] != "true" {
			t.Errorf("shop after applying: labels %v status %+v (%v)", live.Labels, st, err)
		}
		return
	}
	t.Fatal("render --kubeconfig printed no namespace shop")
}

var fixtureLoaded bool

func loadFixtureOnce(t *testing.T, e *testbed.Env) {
	t.Helper()
	if fixtureLoaded {
		return
	}
	if err := e.LoadCluster(context.Background(), fixture); err != nil {
		t.Fatal(err)
	}
	fixtureLoaded = true
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  file:    " + al[i] + "\n  cluster: " + bl[i]
		}
	}
	return "lengths differ"
}
