package policies

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestReadSnapshotFormats(t *testing.T) {
	multi := `
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {x: "1"}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.0.1}, {type: Hostname, address: n1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: a}
---
`
	snap, notes, err := ReadSnapshot("multi.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Namespaces) != 1 || snap.Namespaces[0].Labels["x"] != "1" {
		t.Errorf("namespaces %+v", snap.Namespaces)
	}
	if len(snap.Nodes) != 1 || !reflect.DeepEqual(snap.Nodes[0].Addresses, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) {
		t.Errorf("nodes %+v", snap.Nodes)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "ConfigMap c") || !strings.Contains(notes[0], "skipped") {
		t.Errorf("notes %v", notes)
	}

	list := `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}`
	snap, _, err = ReadSnapshot("list.json", []byte(list))
	if err != nil || len(snap.Namespaces) != 1 || snap.Namespaces[0].Name != "b" {
		t.Errorf("JSON List: %+v, %v", snap, err)
	}
}

func TestReadSnapshotEndpoints(t *testing.T) {
	data := `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.2], conditions: {ready: true}}
- {addresses: [10.0.0.3], conditions: {ready: false}}
- {addresses: [10.0.0.1]}
ports: [{name: https, port: 6443, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.9.9.9]}]
ports: [{port: 80}]
`
	snap, notes, err := ReadSnapshot("eps.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []APIEndpoint{{netip.MustParseAddr("10.0.0.1"), 6443}, {netip.MustParseAddr("10.0.0.2"), 6443}}
	if !reflect.DeepEqual(snap.APIEndpoints, want) {
		t.Errorf("endpoints %v, want %v (a not-ready endpoint is left out)", snap.APIEndpoints, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "EndpointSlice web") {
		t.Errorf("notes %v", notes)
	}
}

func TestReadSnapshotErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{"kind: Namespace\nmetadata: {name: a}", "in.yaml: document 1: apiVersion and kind must be set"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {}", "in.yaml: document 1 (Namespace ): metadata.name must be set"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad_Name}", "metadata.name: \"Bad_Name\" is not a namespace name"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {'bad key!': x}}", "(Namespace a): metadata.labels: key \"bad key!\""},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {k: 'v v'}}", "metadata.labels.k: value \"v v\""},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: [x]}", "(Namespace a)"},
		{"apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nstatus: {addresses: [{type: InternalIP, address: 10.0.0.300}]}", "(Node node1): status.addresses[0].address: \"10.0.0.300\" is not an IP address"},
		{"apiVersion: v1\nkind: Node\nmetadata: {name: n}", "metadata.name must be a string, not false"},
		{"apiVersion: v1\nkind: List\nitems: [1]", "items[0] is not an object"},
		{"apiVersion: v1\nkind: List\nitems: {a: b}", "items must be a list"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}", "document 2 (Namespace a): this object appears twice"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: a\n", "document 1: not valid YAML"},
	}
	for _, tt := range tests {
		_, _, err := ReadSnapshot("in.yaml", []byte(tt.data))
		if err == nil {
			t.Errorf("ReadSnapshot(%q) succeeded, want %q", tt.data, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadSnapshot(%q) = %v\nwant it to contain %q", tt.data, err, tt.want)
		}
	}
}

// FuzzReadSnapshot feeds the reader arbitrary files: it must never panic,
// and whatever it accepts must generate valid policies.
func FuzzReadSnapshot(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {field.cattle.io/projectId: p-a}, annotations: {field.cattle.io/projectId: 'c:p-a'}}"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"addresses":[{"type":"InternalIP","address":"fd00::1"}]}}]}`))
	f.Add([]byte("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: k, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}\nendpoints: [{addresses: [1.2.3.4]}]\nports: [{port: 443}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, _, err := ReadSnapshot("fuzz.yaml", data)
		if err != nil {
			return
		}
		d := Generate(snap, defaultConfigForFuzz())
		for _, inv := range d.Invalid {
			t.Fatalf("accepted input generated an invalid policy: %v", inv.Err)
		}
	})
}

// TestSnapshotFromObject: an object already decoded reads as the file
// that holds only it: the same snapshot, notes and errors.
func TestSnapshotFromObject(t *testing.T) {
	article, err := os.ReadFile(filepath.Join("..", "testdata", "article-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{
		string(article),
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: a}}\n- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: web, namespace: default, labels: {kubernetes.io/service-name: web}}}\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: node1}, status: {addresses: [{type: InternalIP, address: 10.0.0.300}]}}\n",
		"apiVersion: v1\nkind: List\nitems: [1]",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {k: 'v v'}}",
		"kind: Namespace\nmetadata: {name: a}",
	}
	for _, in := range inputs {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(in), &obj); err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		want, wantNotes, wantErr := ReadSnapshot("in.yaml", data)
		got, gotNotes, gotErr := SnapshotFromObject("in.yaml", obj)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%.60q: error %v, want %v", in, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotNotes, wantNotes) {
			t.Errorf("%.60q: got %+v, %q\nwant %+v, %q", in, got, gotNotes, want, wantNotes)
		}
	}
}
