package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestProgramName(t *testing.T) {
	tests := []struct{ arg0, want string }{
		{"calico-pni", "calico-pni"},
		{"/usr/local/bin/calico-pni", "calico-pni"},
		{"/home/me/.krew/bin/kubectl-pni", "kubectl pni"},
		{"kubectl-pni", "kubectl pni"},
		{`C:\krew\bin\kubectl-pni.exe`, "kubectl pni"},
		{"/calico-pni", "calico-pni"},          // the image's entrypoint
		{"/tmp/kubectl-pni-old", "calico-pni"}, // not the plugin's name
		{"/usr/bin/kubectl", "calico-pni"},     // any other name
		{"/tmp/go-build1/b001/calico-pni.test", "calico-pni"},
	}
	for _, tt := range tests {
		if got := programName(tt.arg0); got != tt.want {
			t.Errorf("programName(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
}

// As the plugin, every subcommand's usage names it `kubectl pni <command>`;
// a subcommand that spells out "calico-pni <command>" fails here.
func TestPluginUsageOfEveryCommand(t *testing.T) {
	defer func(p string) { prog = p }(prog)
	prog = "kubectl pni"
	for _, c := range commands() {
		if c.name == "version" {
			continue // takes no flags and prints no usage
		}
		code, _, stderr := calicoPNI(t, "", c.name, "-h")
		want := "Usage: kubectl pni " + c.name
		if code != exitOK || !strings.HasPrefix(stderr, want) || strings.Contains(stderr, "calico-pni "+c.name) {
			t.Errorf("kubectl pni %s -h: exit %d, stderr %q; want exit 0 and usage starting %q", c.name, code, stderr, want)
		}
	}
}

// asBinaryEnv makes the test binary run main() instead of the tests.
const asBinaryEnv = "CALICO_PNI_TEST_AS_BINARY"

// The binary itself, run under the name kubectl-pni as kubectl runs a
// plugin (its path as argv[0]), and under its own name.
func TestKubectlPlugin(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{pluginBinary, "calico-pni"} {
		if err := os.Symlink(self, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	exe := func(name string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, name), args...)
		cmd.Env = append(os.Environ(), asBinaryEnv+"=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	tests := []struct {
		args   []string
		code   int
		stderr []string
	}{
		{nil, exitUsage, []string{"Usage: kubectl pni <command> [flags]", "Run 'kubectl pni <command> -h'"}},
		{[]string{"frobnicate"}, exitUsage, []string{`kubectl pni: unknown command "frobnicate"`, "Usage: kubectl pni <command>"}},
		{[]string{"render", "-h"}, exitOK, []string{"Usage: kubectl pni render "}},
		{[]string{"render"}, exitUsage, []string{"kubectl pni render: give exactly one of -f and --kubeconfig"}},
		{[]string{"render", "-f", fixture, "extra"}, exitUsage, []string{`kubectl pni render: unexpected arguments ["extra"]`}},
		{[]string{"cleanup", "--stop-deployment", "x"}, exitUsage, []string{`kubectl pni cleanup: --stop-deployment "x"`}},
	}
	for _, tt := range tests {
		code, _, stderr := exe(pluginBinary, tt.args...)
		if code != tt.code {
			t.Errorf("kubectl-pni %q: exit %d, want %d; stderr %q", tt.args, code, tt.code, stderr)
		}
		for _, want := range tt.stderr {
			if !strings.Contains(stderr, want) {
				t.Errorf("kubectl-pni %q: stderr %q does not say %q", tt.args, stderr, want)
			}
		}
		// "calico-pni" as the product's name is fine; as the command's, not.
		for _, c := range append(commands(), command{name: "<command>"}) {
			if strings.Contains(stderr, "calico-pni "+c.name) || strings.Contains(stderr, "calico-pni:") {
				t.Errorf("kubectl-pni %q calls itself calico-pni: %q", tt.args, stderr)
			}
		}
	}

	// The plugin does the work of calico-pni: the same policies.
	code, plugin, stderr := exe(pluginBinary, "render", "-f", fixture)
	if code != exitOK || !strings.Contains(plugin, "kind: GlobalNetworkPolicy") {
		t.Fatalf("kubectl-pni render -f: exit %d, stderr %q, stdout %.200q", code, stderr, plugin)
	}
	code, direct, _ := exe("calico-pni", "render", "-f", fixture)
	if code != exitOK || direct != plugin {
		t.Errorf("calico-pni render -f (exit %d) and kubectl-pni render -f print different policies", code)
	}
	// Under its own name it is calico-pni.
	code, _, stderr = exe("calico-pni")
	if code != exitUsage || !strings.Contains(stderr, "Usage: calico-pni <command>") {
		t.Errorf("calico-pni: exit %d, stderr %q", code, stderr)
	}
}
