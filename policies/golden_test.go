package policies

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// articleSnapshot reads the article-shaped fixture shared by the tests, the
// demo and the benchmarks. The reader of cluster files is package objects,
// which imports this one; this test feeds the fixture's objects (a List of
// the kinds the generator reads) to SnapshotBuilder as that reader does.
func articleSnapshot(t testing.TB) Snapshot {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "article-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []json.RawMessage }
	if err := yaml.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	var b SnapshotBuilder
	for i, item := range list.Items {
		var meta metav1.TypeMeta
		if err := json.Unmarshal(item, &meta); err != nil {
			t.Fatal(err)
		}
		var err error
		switch meta.Kind {
		case "Namespace":
			err = addJSON(item, b.AddNamespace)
		case "Node":
			err = addJSON(item, b.AddNode)
		case "Service":
			err = addJSON(item, b.AddService)
		case "Pod":
			err = addJSON(item, b.AddPod)
		case "EndpointSlice":
			err = addJSON(item, func(s *discoveryv1.EndpointSlice) error { b.AddEndpointSlice(s); return nil })
		default:
			t.Fatalf("items[%d]: the fixture has a %s, which the generator does not read", i, meta.Kind)
		}
		if err != nil {
			t.Fatalf("items[%d] (%s): %v", i, meta.Kind, err)
		}
	}
	return b.Snapshot()
}

func addJSON[T any](data []byte, add func(*T) error) error {
	obj := new(T)
	if err := json.Unmarshal(data, obj); err != nil {
		return err
	}
	return add(obj)
}

// TestGolden renders the article fixture with the default configuration
// and compares it with the golden files in testdata: for the article's API
// (crd.projectcalico.org/v1 on Calico 3.28, the default tier), and in
// calico-pni's own tier as Calico 3.29-3.31 names it (<tier>.<name>, v1)
// and as 3.32 does (plain names, spec.tier, v3). Review the diff of
// `go test ./policies -run TestGolden -update` before committing it.
func TestGolden(t *testing.T) {
	tests := []struct {
		golden      string
		api         calico.API
		enforcement string
	}{
		{"article.golden.yaml", calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}, config.EnforcementAuto},
		{"article-tier-3.31.golden.yaml", calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 31}, Tiers: true}, config.EnforcementAuto},
		{"article-tier-3.32.golden.yaml", calico.API{Group: calico.GroupV3, Version: calico.Version{Major: 3, Minor: 32}, Tiers: true}, config.EnforcementTier},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			snap := articleSnapshot(t)
			snap.CalicoVersion = tt.api.Version
			cfg := config.Default()
			cfg.Enforcement = tt.enforcement
			d := Generate(snap, cfg)
			if len(d.Invalid) > 0 {
				t.Fatalf("invalid policies: %v", d.Invalid)
			}
			got, err := YAML(d.Manifests(tt.api, true))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("output differs from %s; run `go test ./policies -run TestGolden -update` and review the diff\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}
