package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/report"
)

// The synthetic cluster of the scale benchmark with one pod per user
// namespace and users' NetworkPolicies, written once per size and format.
// docs/benchmarks.md gives the figures; run with
//
//	go test ./cmd/calico-pni -short -run '^$' -bench 'Explain|Matrix' -benchtime 3x
func benchFile(b *testing.B, namespaces int, format string) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("calico-pni-bench-%d.%s", namespaces, format))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	c := synthetic.New(synthetic.Size{Namespaces: namespaces, Projects: namespaces / 10, Nodes: max(namespaces/100, 1)})
	objects, err := c.EvaluatorObjects(c.Workloads(1, namespaces/5))
	if err != nil {
		b.Fatal(err)
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": objects}
	var data []byte
	if format == "json" {
		data, err = json.Marshal(list)
	} else {
		data, err = yaml.Marshal(list)
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchRun(b *testing.B, args ...string) {
	b.Helper()
	for b.Loop() {
		var stderr strings.Builder
		if code := run(args, nil, io.Discard, &stderr); code != exitOK {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
}

// BenchmarkExplainFromFile: one explain, from reading the file to the
// printed explanation, on a pair of pods in two projects.
func BenchmarkExplainFromFile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, format := range []string{"yaml", "json"} {
			b.Run(fmt.Sprintf("namespaces=%d/%s", n, format), func(b *testing.B) {
				path := benchFile(b, n, format)
				benchRun(b, "explain", "-f", path, "--from", "ns-00000", "--to", "ns-00001", "--port", "8080")
			})
		}
	}
}

// BenchmarkMatrixByProject: matrix --by project over every port, from
// reading the file to the printed grid.
func BenchmarkMatrixByProject(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, format := range []string{"yaml", "json"} {
			b.Run(fmt.Sprintf("namespaces=%d/%s", n, format), func(b *testing.B) {
				path := benchFile(b, n, format)
				benchRun(b, "matrix", "-f", path, "--by", "project")
			})
		}
	}
}

// BenchmarkMatrixHTML: the HTML page alone, from the computed matrix to
// the written page, with its size; compare=true is --compare on the
// cluster without calico-pni (isolation being turned on, so that most
// cells change). docs/benchmarks.md gives the figures; run with
//
//	go test ./cmd/calico-pni -short -run '^$' -bench MatrixHTML -benchmem -benchtime 3x
func BenchmarkMatrixHTML(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, compare := range []bool{false, true} {
			b.Run(fmt.Sprintf("namespaces=%d/compare=%t", n, compare), func(b *testing.B) {
				path := benchFile(b, n, "json")
				if compare {
					path = syntheticCluster(b, b.TempDir(), n, false)
				}
				in := evalInput{files: files{path}}
				loaded, err := in.load(nil, compare)
				if err != nil {
					b.Fatal(err)
				}
				before := ""
				if compare {
					before = "today"
				}
				r := matrixReport(in, loaded, "project", "TCP", 0, before)
				var page bytes.Buffer
				for b.Loop() {
					page.Reset()
					if err := report.MatrixHTML(&page, r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(page.Len()), "page-bytes")
			})
		}
	}
}

// BenchmarkMatrixByProjectHTML: matrix --by project -o html end to end,
// from reading the file to the written page.
func BenchmarkMatrixByProjectHTML(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("namespaces=%d/json", n), func(b *testing.B) {
			benchRun(b, "matrix", "-f", benchFile(b, n, "json"), "--by", "project", "-o", "html")
		})
	}
}
