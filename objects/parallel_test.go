package objects

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/synthetic"
)

// TestParallelRead: a large List read in parallel gives what reading it
// object by object gives, in YAML and in JSON, and a duplicate in another
// chunk is still found.
func TestParallelRead(t *testing.T) {
	c := synthetic.New(synthetic.Size{Namespaces: 3000, Projects: 100, Nodes: 10})
	objects, err := c.EvaluatorObjects(c.Workloads(1, 200))
	if err != nil {
		t.Fatal(err)
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": objects}
	yamlData, err := yaml.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	jsonData, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"yaml": yamlData, "json": jsonData} {
		if len(data) < minParallel {
			t.Fatalf("%s: %d bytes is too small to be read in parallel", name, len(data))
		}
		parallel, sequential := NewReader(), NewReader()
		parallel.KeepSnapshot, sequential.KeepSnapshot = true, true
		done, err := parallel.readList("big", data)
		if !done || err != nil {
			t.Fatalf("%s: read in parallel: %v %v", name, done, err)
		}
		if err := sequential.readDocuments("big", data); err != nil {
			t.Fatal(err)
		}
		p, s := parallel.Finish(), sequential.Finish()
		if !reflect.DeepEqual(p.Cluster, s.Cluster) || !reflect.DeepEqual(p.Snapshot, s.Snapshot) || len(p.Cluster.Pods) != len(c.Namespaces) {
			t.Errorf("%s: the parallel read differs from the sequential one (%d and %d pods)", name, len(p.Cluster.Pods), len(s.Cluster.Pods))
		}
	}
	dup := append(objects, objects[len(objects)/2])
	data, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": dup})
	r := NewReader()
	if err := r.ReadFile("big.json", data); err == nil || !strings.Contains(err.Error(), "this object appears twice") || !strings.Contains(err.Error(), "items["+itoa(len(dup)-1)+"]") {
		t.Errorf("duplicate: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
