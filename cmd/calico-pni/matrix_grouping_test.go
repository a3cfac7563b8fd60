package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// groupingCluster has a namespace of each kind of project membership:
// one whose guarded annotation names its project, one whose label and
// annotation disagree (the annotation decides), and one with a label only
// (in a project only with trustLabelOnly).
const groupingCluster = `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: {field.cattle.io/projectId: p-one}, annotations: {field.cattle.io/projectId: "c-x:p-one"}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b, labels: {field.cattle.io/projectId: p-one}, annotations: {field.cattle.io/projectId: "c-x:p-two"}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: c, labels: {field.cattle.io/projectId: p-three}}}
- {apiVersion: v1, kind: Pod, metadata: {name: pa, namespace: a}, spec: {nodeName: n1}, status: {podIP: 10.0.0.1}}
- {apiVersion: v1, kind: Pod, metadata: {name: pb, namespace: b}, spec: {nodeName: n1}, status: {podIP: 10.0.0.2}}
- {apiVersion: v1, kind: Pod, metadata: {name: pc, namespace: c}, spec: {nodeName: n1}, status: {podIP: 10.0.0.3}}
`

// TestMatrixGroupsProjectsAsTheConfigurationDoes: `matrix --by project`
// groups namespaces into the projects calico-pni's generator walls off
// under --config, so that the groups and --preview agree. Before, the
// grouping ignored trustLabelOnly and put label-only namespaces in no
// project while the walls (and --preview) put them in their project.
func TestMatrixGroupsProjectsAsTheConfigurationDoes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.yaml")
	trust := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(file, []byte(groupingCluster), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trust, []byte("trustLabelOnly: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		groups []string
	}{
		{"defaults", nil, []string{"(no project)", "p-one", "p-two"}},
		{"trustLabelOnly", []string{"--config", trust}, []string{"p-one", "p-three", "p-two"}},
		{"trustLabelOnly with --preview", []string{"--config", trust, "--preview", "--calico-version", "v3.28.5"}, []string{"p-one", "p-three", "p-two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"matrix", "-f", file, "--by", "project", "-o", "json"}, tt.args...)
			code, out, stderr := calicoPNI(t, "", args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got struct {
				Groups []string `json:"groups"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			slices.Sort(got.Groups)
			if !slices.Equal(got.Groups, tt.groups) {
				t.Errorf("groups %v, want %v", got.Groups, tt.groups)
			}
		})
	}
}
