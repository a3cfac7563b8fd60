package charttest

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/config"
)

// fleetYAML holds the fields of Fleet's fleet.yaml (FleetYAML in
// github.com/rancher/fleet pkg/apis/fleet.cattle.io/v1alpha1, with Fleet's
// JSON names) that calico-pni's fleet/fleet.yaml uses. It is decoded
// strictly: a misspelt key, which Fleet would ignore, fails here.
type fleetYAML struct {
	DefaultNamespace     string          `json:"defaultNamespace"`
	Helm                 fleetHelm       `json:"helm"`
	OverrideTargets      []fleetTarget   `json:"overrideTargets"`
	TargetCustomizations []fleetCustomer `json:"targetCustomizations"`
}

type fleetHelm struct {
	Chart       string         `json:"chart,omitempty"`
	ReleaseName string         `json:"releaseName,omitempty"`
	Values      map[string]any `json:"values,omitempty"`
}

type fleetTarget struct {
	Name            string                `json:"name"`
	ClusterName     string                `json:"clusterName,omitempty"`
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	ClusterGroup    string                `json:"clusterGroup,omitempty"`
}

// fleetCustomer is a targetCustomizations entry: a target and its values.
type fleetCustomer struct {
	fleetTarget `json:",inline"`
	Helm        *fleetHelm `json:"helm,omitempty"`
}

func readFleetYAML(t *testing.T) fleetYAML {
	t.Helper()
	data, err := os.ReadFile(repo(t, "fleet", "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f fleetYAML
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("fleet/fleet.yaml: %v", err)
	}
	return f
}

// fleet.yaml installs this repository's chart, as the catalog does
// (release calico-pni in calico-pni-system), on the clusters labelled
// calico-pni.io/enabled=true and no others.
func TestFleetBundle(t *testing.T) {
	f := readFleetYAML(t)
	if f.DefaultNamespace != namespace || f.Helm.ReleaseName != release {
		t.Errorf("fleet.yaml installs release %q in %q, want %q in %q", f.Helm.ReleaseName, f.DefaultNamespace, release, namespace)
	}
	// A go-getter URL: git::<repository>//<path in it>?ref=<branch or tag>.
	source, ok := strings.CutPrefix(f.Helm.Chart, "git::")
	repository, rest, found := strings.Cut(source, ".git//")
	u, err := url.Parse("https://x/" + rest)
	if !ok || !found || err != nil {
		t.Fatalf("helm.chart %q is not git::<repository>.git//<path>?ref=<ref>", f.Helm.Chart)
	}
	if repository != "https://github.com/calico-pni/calico-pni" || u.Query().Get("ref") == "" {
		t.Errorf("helm.chart %q: want this repository with a ref", f.Helm.Chart)
	}
	chartPath := strings.TrimPrefix(u.Path, "/")
	if _, err := os.Stat(repo(t, filepath.FromSlash(chartPath), "Chart.yaml")); err != nil || chartPath != "charts/calico-pni" {
		t.Errorf("helm.chart points at %q, which is not this repository's chart: %v", chartPath, err)
	}

	if len(f.OverrideTargets) != 1 || f.OverrideTargets[0].ClusterSelector == nil {
		t.Fatalf("overrideTargets %+v: want one cluster selector", f.OverrideTargets)
	}
	selector, err := metav1.LabelSelectorAsSelector(f.OverrideTargets[0].ClusterSelector)
	if err != nil {
		t.Fatalf("overrideTargets: %v", err)
	}
	for set, want := range map[string]bool{"calico-pni.io/enabled=true": true, "calico-pni.io/enabled=false": false, "": false, "provider.cattle.io=rke2": false} {
		l, _ := labels.ConvertSelectorToLabelsMap(set)
		if selector.Matches(l) != want {
			t.Errorf("overrideTargets select a cluster labelled %q: %t, want %t", set, selector.Matches(l), want)
		}
	}
}

// Each customisation, merged over the base values as Fleet merges them,
// renders through helm and the chart's values.schema.json, and the daemon
// accepts the configuration that comes out and holds what the
// customisation says.
func TestFleetCustomisations(t *testing.T) {
	f := readFleetYAML(t)
	if len(f.TargetCustomizations) == 0 {
		t.Fatal("fleet.yaml has no targetCustomizations")
	}
	base := writeValues(t, "base", f.Helm.Values)
	if _, err := renderErr(t, "-f", base); err != nil {
		t.Errorf("the base values: %v", err)
	}
	names := map[string]bool{}
	for _, c := range f.TargetCustomizations {
		if c.Name == "" || names[c.Name] {
			t.Errorf("customisation %q: needs a name of its own", c.Name)
		}
		names[c.Name] = true
		targets := 0
		for _, set := range []bool{c.ClusterName != "", c.ClusterSelector != nil, c.ClusterGroup != ""} {
			if set {
				targets++
			}
		}
		if targets != 1 {
			t.Errorf("customisation %s: give one of clusterName, clusterSelector, clusterGroup", c.Name)
		}
		if c.ClusterSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(c.ClusterSelector); err != nil {
				t.Errorf("customisation %s: %v", c.Name, err)
			}
		}
		if c.Helm == nil || len(c.Helm.Values) == 0 {
			t.Errorf("customisation %s sets no values", c.Name)
			continue
		}
		if c.Helm.Chart != "" || c.Helm.ReleaseName != "" {
			t.Errorf("customisation %s changes the chart or release: every cluster gets the same", c.Name)
		}
		objects, err := renderFleetTarget(t, base, c.Name, c.Helm.Values)
		if err != nil {
			t.Errorf("customisation %s: %v", c.Name, err)
			continue
		}
		data := renderedConfig(t, objects)
		if _, err := config.Parse(data); err != nil {
			t.Errorf("customisation %s: the daemon refuses the rendered configuration: %v", c.Name, err)
		}
		var rendered map[string]any
		if err := yaml.Unmarshal(data, &rendered); err != nil {
			t.Fatal(err)
		}
		if cfg, ok := c.Helm.Values["config"].(map[string]any); ok {
			for _, path := range leafPaths(cfg, "") {
				want, _ := lookup(cfg, path)
				got, ok := lookup(rendered, path)
				// Lists reach the daemon whole; the chart may append the
				// release namespace to exemptNamespaces.
				if list, isList := got.([]any); isList && len(list) > 0 {
					if w, _ := want.([]any); len(w) <= len(list) {
						got = list[:len(w)]
					}
				}
				if !ok || !sameJSON(got, want) {
					t.Errorf("customisation %s: config.%s is %v in the daemon's configuration, want %v", c.Name, path, got, want)
				}
			}
		}
	}

	// A broken customisation fails, naming the value.
	_, err := renderFleetTarget(t, base, "broken", map[string]any{"config": map[string]any{"dns": map[string]any{"mode": "google"}}})
	if err == nil || !strings.Contains(err.Error(), "/config/dns/mode") {
		t.Errorf("a customisation with dns.mode google: %v, want refused by the schema", err)
	}
}

// renderFleetTarget renders the chart with the base values and a
// customisation's values over them. Helm merges -f files as Fleet merges a
// customisation's values (maps key by key, anything else replaced), and
// checks the result against values.schema.json.
func renderFleetTarget(t *testing.T, base, name string, values map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	out, err := renderErr(t, "-f", base, "-f", writeValues(t, name, values))
	if err != nil {
		return nil, err
	}
	return decode(out)
}

func writeValues(t *testing.T, name string, values map[string]any) string {
	t.Helper()
	data, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// leafPaths lists the dotted paths of a map's values that are not maps.
func leafPaths(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leafPaths(sub, prefix+k+".")...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out
}
