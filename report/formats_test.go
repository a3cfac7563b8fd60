package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/objects"
)

// articleMatrix is the article fixture's matrix by namespace, on TCP 80.
func articleMatrix(t *testing.T) *evaluator.Matrix {
	t.Helper()
	r := objects.NewReader()
	for _, path := range []string{"../testdata/article-cluster.yaml", "../testdata/article-workloads.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ReadFile(path, data); err != nil {
			t.Fatal(err)
		}
	}
	set := r.Finish()
	ix := evaluator.NewIndex(&set.Cluster)
	return ix.Matrix(evaluator.MatrixOptions{Protocol: "TCP", Port: 80, GroupOf: func(ns *evaluator.Namespace) string { return ns.Name }})
}

// Every format of the matrix holds every group and every cell, in the
// form its readers expect.
func TestMatrixFormats(t *testing.T) {
	m := articleMatrix(t)
	rep := MatrixReport{By: "namespace", Matrix: m}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		check func(t *testing.T, out string)
	}{
		{"text", func(b *bytes.Buffer) error { return MatrixText(b, rep) }, func(t *testing.T, out string) {
			for _, g := range m.Groups {
				if !strings.Contains(out, g) {
					t.Errorf("text lacks group %s", g)
				}
			}
		}},
		{"csv", func(b *bytes.Buffer) error { return MatrixCSV(b, rep) }, func(t *testing.T, out string) {
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) < 1+len(m.Groups) {
				t.Errorf("csv has %d rows for %d groups", len(rows), len(m.Groups))
			}
		}},
		{"json", func(b *bytes.Buffer) error { return MatrixJSON(b, rep) }, func(t *testing.T, out string) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("json does not parse: %v", err)
			}
			if len(doc) == 0 {
				t.Error("json is empty")
			}
		}},
		{"html", func(b *bytes.Buffer) error { return MatrixHTML(b, rep) }, func(t *testing.T, out string) {
			if !strings.HasPrefix(strings.TrimSpace(out), "<!DOCTYPE html>") && !strings.HasPrefix(strings.TrimSpace(out), "<!doctype html>") {
				t.Errorf("html starts %q", out[:min(40, len(out))])
			}
		}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := tt.write(&b); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		tt.check(t, b.String())
	}
}
