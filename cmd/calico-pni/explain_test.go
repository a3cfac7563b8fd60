package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainAndMatrixExitCodes: 0 when evaluated whatever the verdict, 1
// on bad input with a message naming it, 2 on usage errors.
func TestExplainAndMatrixExitCodes(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(badConfig, []byte("dns: {mode: nowhere}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{"-f", fixture, "-f", workloads}
	web := "shop/web-6f7c9d8b4-xk2lp"
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"explain", "-h"}, exitOK, "Exit codes: 0 evaluated (whatever the verdict), 1 bad input, 2 usage."},
		{append([]string{"explain", "--from", web, "--to", "shop/db-0", "--port", "5432"}, files...), exitOK, ""},
		{[]string{"explain", "--from", web, "--to", "shop/db-0"}, exitUsage, "give -f FILE or --kubeconfig PATH"},
		{append([]string{"explain", "--to", "shop/db-0"}, files...), exitUsage, "give --from and --to"},
		{append([]string{"explain", "--from", web, "--to", "shop", "--port", "70000"}, files...), exitUsage, "--port 70000"},
		{append([]string{"explain", "--from", web, "--to", "shop", "--protocol", "ICMP"}, files...), exitUsage, `--protocol "ICMP": use TCP, UDP or SCTP`},
		{append([]string{"explain", "--from", web, "--to", "shop", "-o", "yaml"}, files...), exitUsage, `-o "yaml": use text or json`},
		{append([]string{"explain", "--from", "shop/nope", "--to", "shop"}, files...), exitInvalid, "--from shop/nope: no pod shop/nope in namespace shop"},
		{append([]string{"explain", "--from", "nowhere", "--to", "shop"}, files...), exitInvalid, "--from nowhere: no namespace nowhere"},
		{[]string{"explain", "--from", "shop", "--to", "redis", "-f", filepath.Join(dir, "missing.yaml")}, exitInvalid, "missing.yaml: no such file"},
		{append([]string{"explain", "--from", "shop", "--to", "redis", "--preview", "--config", badConfig}, files...), exitInvalid, `dns.mode: "nowhere" is not a DNS mode`},
		{[]string{"explain", "--from", "shop", "--to", "redis", "--kubeconfig", filepath.Join(dir, "missing")}, exitInvalid, "--kubeconfig"},
		{[]string{"matrix", "-h"}, exitOK, "Exit codes: 0 evaluated, 1 bad input, 2 usage."},
		{append([]string{"matrix", "--by", "team"}, files...), exitUsage, `--by "team": use project or namespace`},
		{append([]string{"matrix", "--preview", "--compare"}, files...), exitUsage, "give --preview or --compare, not both"},
		{append([]string{"matrix", "-o", "png"}, files...), exitUsage, `-o "png": use text, csv, json or html`},
		{[]string{"matrix", "-f", filepath.Join(dir, "missing.yaml")}, exitInvalid, "no such file"},
	}
	for _, tt := range tests {
		code, _, stderr := calicoPNI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("calico-pni %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
}

// TestExplainFromStandardInput reads the objects from '-' and names an
// endpoint by address.
func TestExplainFromStandardInput(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	more, err := os.ReadFile(workloads)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := calicoPNI(t, string(data)+"\n---\n"+string(more), "explain", "--from", "10.42.1.10", "--to", "93.184.216.34", "--port", "443", "--preview", "-f", "-")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Connection: shop/web-6f7c9d8b4-xk2lp -> 93.184.216.34, TCP 443", "Verdict:    DENIED", "pni-deny-egress", "Note: 10.42.1.10 is the address of pod shop/web-6f7c9d8b4-xk2lp"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestExplainStaged: --staged evaluates staged policies as if enforced.
func TestExplainStaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staged.yaml")
	text := `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: shop, labels: {app: a}}, spec: {nodeName: n1, containers: [{name: a, image: a}]}, status: {podIP: 10.1.0.1}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: shop, labels: {app: b}}, spec: {nodeName: n1, containers: [{name: b, image: b}]}, status: {podIP: 10.1.0.2}}
- {apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: guard}, spec: {order: 1, selector: app == 'b', types: [Ingress], ingress: [{action: Deny}]}}
- {apiVersion: projectcalico.org/v3, kind: StagedGlobalNetworkPolicy, metadata: {name: guard}, spec: {order: 1, selector: app == 'b', types: [Ingress], ingress: [{action: Allow}]}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"explain", "-f", path, "--from", "shop/a", "--to", "shop/b", "--port", "80", "-o", "json"}
	_, enforced, _ := calicoPNI(t, "", args...)
	code, staged, stderr := calicoPNI(t, "", append(args, "--staged")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(enforced, `"verdict": "deny"`) || !strings.Contains(staged, `"verdict": "allow"`) || !strings.Contains(staged, `"kind": "StagedGlobalNetworkPolicy"`) {
		t.Errorf("enforced:\n%s\nstaged:\n%s", enforced, staged)
	}
}
