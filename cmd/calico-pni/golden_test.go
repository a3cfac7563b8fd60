package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of explain and matrix from the current output")

// workloads are the fixture's pods and users' policies, read with the
// article fixture by explain and matrix.
var workloads = filepath.Join("..", "..", "testdata", "article-workloads.yaml")

// golden compares output with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s; run `go test ./cmd/calico-pni -run %s -update` and review the diff\n%s", path, t.Name(), firstDifference(string(want), got))
	}
}

// TestExplainGolden runs explain on the article fixture and its workloads.
func TestExplainGolden(t *testing.T) {
	web := "shop/web-6f7c9d8b4-xk2lp"
	tests := []struct {
		name string
		args []string
	}{
		// The redis role, as calico-pni would write it: the users' own
		// Kubernetes NetworkPolicy in redis decides first, at order 1000.
		{"explain-web-redis.txt", []string{"--from", web, "--to", "redis/redis-master-0", "--port", "6379", "--preview"}},
		{"explain-web-redis.json", []string{"--from", web, "--to", "redis/redis-master-0", "--port", "6379", "--preview", "-o", "json"}},
		// A user's Calico Deny at order 500 wins over calico-pni's
		// per-project allow at order 2000.
		{"explain-legacy-db.txt", []string{"--from", "legacy", "--to", "shop/db-0", "--port", "5432", "--preview"}},
		// Today: the users' Calico policy selects the database, so what it
		// does not allow ends at the end of the default tier.
		{"explain-cart-db-today.txt", []string{"--from", "shop/cart-7d8f9c6b5-m4n7q", "--to", "shop/db-0", "--port", "5432"}},
		// Every port: the ingress controller reaches its backend on 80 and
		// 443 (calico-pni's exception), not on 8080 (its own egress).
		{"explain-ingress-web.txt", []string{"--from", "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", "--to", web, "--preview"}},
		{"explain-ingress-web.json", []string{"--from", "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", "--to", web, "--preview", "-o", "json"}},
		// From outside to the NodePort Service's pod.
		{"explain-outside-web.txt", []string{"--from", "198.51.100.7", "--to", web, "--port", "8080", "--preview"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "-f", fixture, "-f", workloads}, tt.args...)
			code, stdout, stderr := calicoPNI(t, "", args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, tt.name, stdout)
		})
	}
}

// TestMatrixGolden runs matrix on the article fixture and its workloads.
func TestMatrixGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"matrix-project.txt", nil},
		{"matrix-compare.txt", []string{"--compare"}},
		{"matrix-namespace-preview.csv", []string{"--by", "namespace", "--preview", "-o", "csv"}},
		{"matrix-compare.csv", []string{"--compare", "-o", "csv"}},
		{"matrix-compare.html", []string{"--compare", "-o", "html"}},
		{"matrix-namespace-6379.html", []string{"--by", "namespace", "--port", "6379", "--preview", "-o", "html"}},
		{"matrix-project-preview.json", []string{"--preview", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"matrix", "-f", fixture, "-f", workloads}, tt.args...)
			code, stdout, stderr := calicoPNI(t, "", args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, tt.name, stdout)
			if strings.HasSuffix(tt.name, ".html") {
				if err := standsAlone(stdout); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// standsAlone checks that a page fetches nothing: no address, no
// attribute or script call that loads a resource; its script and style
// are inline.
func standsAlone(page string) error {
	for _, bad := range []string{"http://", "https://", "//cdn", " src=", " href=", "url(", "@import", "fetch(", "XMLHttpRequest", "import(", "WebSocket", "EventSource", "sendBeacon"} {
		if strings.Contains(page, bad) {
			return fmt.Errorf("the HTML page contains %q: it must stand alone, without the network", bad)
		}
	}
	if !strings.Contains(page, "<script>") || !strings.Contains(page, "<style>") {
		return errors.New("the HTML page has no inline script or style")
	}
	return nil
}

// TestREADMEExplain keeps the README's example the real output of the
// command it shows.
func TestREADMEExplain(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := calicoPNI(t, "", "explain", "-f", fixture, "-f", workloads, "--preview",
		"--from", "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", "--to", "shop/web-6f7c9d8b4-xk2lp", "--port", "8080")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(string(readme), stdout) {
		t.Errorf("README.md no longer shows the output of its explain example; paste this:\n%s", stdout)
	}
}
