// Command evalbench writes the synthetic cluster of the scale benchmark,
// with pods and users' NetworkPolicies, as one YAML file of the objects
// `kubectl get ... -o yaml` lists, for measuring `calico-pni explain` and
// `calico-pni matrix` (docs/benchmarks.md gives the method and figures).
//
//	go run ./internal/evalbench -namespaces 10000 -projects 1000 -policies 2000 -out /tmp/cluster.yaml
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/synthetic"
)

func main() {
	var size synthetic.Size
	flag.IntVar(&size.Namespaces, "namespaces", 10000, "namespaces in the synthetic cluster")
	flag.IntVar(&size.Projects, "projects", 1000, "user projects")
	flag.IntVar(&size.Nodes, "nodes", 100, "nodes")
	pods := flag.Int("pods", 1, "pods per user namespace")
	policies := flag.Int("policies", 2000, "users' Kubernetes NetworkPolicies")
	out := flag.String("out", "", "file to write (required)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "evalbench: -out is required")
		os.Exit(2)
	}
	if err := write(*out, size, *pods, *policies); err != nil {
		fmt.Fprintln(os.Stderr, "evalbench:", err)
		os.Exit(1)
	}
}

func write(path string, size synthetic.Size, pods, policies int) error {
	c := synthetic.New(size)
	objects, err := c.EvaluatorObjects(c.Workloads(pods, policies))
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": objects})
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if _, err := w.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "evalbench: wrote %d objects (%d bytes) to %s\n", len(objects), len(data), path)
	return f.Close()
}
