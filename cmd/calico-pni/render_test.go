package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/policies"
)

func TestRenderFile(t *testing.T) {
	code, stdout, stderr := calicoPNI(t, "", "render", "-f", fixture, "--api", "v1", "--calico-version", "v3.28.5")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden, err := os.ReadFile(filepath.Join("..", "..", "policies", "testdata", "article.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(golden) {
		t.Error("render -f on the fixture differs from the generator's golden file")
	}
	if stderr != "" {
		t.Errorf("render printed warnings for the fixture: %s", stderr)
	}

	// Standard input, v3, policies only.
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = calicoPNI(t, string(data), "render", "-f", "-", "--namespaces=false")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "kind: Namespace") || strings.Contains(stdout, "default.pni-") || !strings.Contains(stdout, "apiVersion: projectcalico.org/v3") {
		t.Errorf("v3 render from stdin:\n%s", stdout)
	}
}

func TestRenderInvalidInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badNS := write("bad.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {'a b': c}}\n")
	badConfig := write("config.yaml", "dns: {mode: nowhere}\n")
	// YAML 1.1 reads an unquoted y as a boolean and 1.0 as a number.
	boolLabel := write("bool.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {app: y}}\n")
	numberLabel := write("number.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {version: 1.0}}\n")
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"render", "-f", badNS}, badNS + ": document 1 (Namespace shop): metadata.labels: key \"a b\""},
		{[]string{"render", "-f", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"render", "-f", boolLabel}, boolLabel + `: document 1 (Namespace shop): metadata.labels.app: the value is the boolean true, not a string: YAML 1.1 reads unquoted y, yes, on, true, n, no, off and false as booleans; quote it (app: "...")`},
		{[]string{"render", "-f", numberLabel}, numberLabel + `: document 1 (Pod shop/p): metadata.labels.version: the value is the number 1, not a string`},
		{[]string{"render", "-f", fixture, "--config", badConfig}, "dns.mode: \"nowhere\" is not a DNS mode"},
		{[]string{"render", "-f", fixture, "--api", "v1"}, "--api v1 needs --calico-version"},
		{[]string{"render", "-f", fixture, "--api", "v1", "--calico-version", "latest"}, "--calico-version: Calico version \"latest\""},
		{[]string{"render", "--kubeconfig", filepath.Join(dir, "missing")}, "--kubeconfig"},
	}
	for _, tt := range tests {
		code, stdout, stderr := calicoPNI(t, "", tt.args...)
		if code != exitInvalid || !strings.Contains(stderr, tt.stderr) || stdout != "" {
			t.Errorf("calico-pni %v: exit %d, stdout %d bytes, stderr %q; want exit 1, no output, and %q", tt.args, code, len(stdout), stderr, tt.stderr)
		}
	}
}

func TestRenderWarnsAndNotes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	text := "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: app}\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := calicoPNI(t, "", "render", "-f", p)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: no System project") || !strings.Contains(stderr, "(Secret app/s): skipped") {
		t.Errorf("stderr %q", stderr)
	}
	if !strings.Contains(stdout, policies.StatusAnnotation) {
		t.Errorf("no namespace status in output:\n%s", stdout)
	}
}

// render refuses to stage isolation for a Calico that serves no staged
// policies (before 3.30), with the daemon's message (sync/pass.go): the
// staged policies it printed could not be applied.
func TestRenderRefusesStagingBeforeCalico330(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stage := write("stage.yaml", "rollout: stage\n")
	someStaged := write("some.yaml", "projects: {enforce: [p-mcb29], stage: [p-b6jcw]}\n")
	const refusal = "staging isolation (rollout: stage, or projects.stage) needs Calico's staged policies, which Calico 3.30 and later serve; projectcalico.org/v3 serves none (Calico v3.29): set rollout: enforce and leave projects.stage empty, or upgrade Calico"
	for _, cfg := range []string{stage, someStaged} {
		code, stdout, stderr := calicoPNI(t, "", "render", "-f", fixture, "--config", cfg, "--calico-version", "v3.29.5")
		if code != exitInvalid || stdout != "" || !strings.Contains(stderr, refusal) {
			t.Errorf("render with %s for Calico 3.29: exit %d, %d bytes out, stderr %q\nwant exit 1, no output and %q", filepath.Base(cfg), code, len(stdout), stderr, refusal)
		}
	}
	code, stdout, stderr := calicoPNI(t, "", "render", "-f", fixture, "--config", stage, "--calico-version", "v3.30.0")
	if code != exitOK || !strings.Contains(stdout, "kind: StagedGlobalNetworkPolicy") {
		t.Errorf("render with rollout: stage for Calico 3.30: exit %d, stderr %q, staged policies printed: %v", code, stderr, strings.Contains(stdout, "kind: StagedGlobalNetworkPolicy"))
	}
}

// TestRenderReadsAsExplainDoes: render -f reads with the reader explain
// and matrix use: several files, standard input, and Rancher's
// NetworkPolicies, of which it prints the copies calico-pni keeps while
// they exist (policies.HandoverName).
func TestRenderReadsAsExplainDoes(t *testing.T) {
	rancherFile := filepath.Join("..", "..", "testdata", "article-rancher-isolation.yaml")
	code, stdout, stderr := calicoPNI(t, "", "render", "-f", rancherFile)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "name: "+policies.HandoverName("shop")) {
		t.Errorf("no copy of shop's Rancher policies in render's output")
	}
	extra := "apiVersion: v1\nkind: Namespace\nmetadata: {name: extra, labels: {field.cattle.io/projectId: p-b6jcw}, annotations: {field.cattle.io/projectId: 'c-m4x7q:p-b6jcw'}}\n"
	code, two, stderr := calicoPNI(t, extra, "render", "-f", fixture, "-f", "-")
	if code != exitOK {
		t.Fatalf("two files: exit %d: %s", code, stderr)
	}
	if !strings.Contains(two, "name: extra") || !strings.Contains(two, "name: shop") {
		t.Errorf("render of the fixture and a namespace on standard input lacks one of them:\n%s", two)
	}
}
