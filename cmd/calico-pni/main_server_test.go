package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// env is the real API server of this package's tests, with both Calico
// APIs served, Calico 3.29's Tier CRD, and ClusterInformation saying
// Calico 3.28.
var env *testbed.Env

func TestMain(m *testing.M) {
	// TestKubectlPlugin runs this test binary as calico-pni itself, under
	// the plugin's name and its own.
	if os.Getenv(asBinaryEnv) == "1" {
		main()
	}
	// Tests that need calico-pni as a process of its own (to stop it with
	// a signal) run this test binary as the command: see startProcess.
	if args := os.Getenv(asCommandEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitUsage)
		}
		os.Exit(run(argv, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(testbed.Run(m, testbed.Options{CalicoV1: true, CalicoV3: true, CalicoTiers: true, CalicoVersion: "v3.28.5"}, &env))
}

// calicoPNI runs the command in-process and returns exit code and outputs.
func calicoPNI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var fixture = filepath.Join("..", "..", "testdata", "article-cluster.yaml")

func TestUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, exitUsage, "Usage: calico-pni <command>"},
		{[]string{"help"}, exitOK, "render"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"render", "-h"}, exitOK, "Exit codes: 0 done, 1 invalid input, 2 usage."},
		{[]string{"render", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"render"}, exitUsage, "give exactly one of -f and --kubeconfig"},
		{[]string{"render", "-f", "x", "--kubeconfig", "y"}, exitUsage, "give exactly one of -f and --kubeconfig"},
		{[]string{"render", "-f", fixture, "--api", "v2"}, exitUsage, `--api "v2": use v1 or v3`},
		{[]string{"render", "-f", fixture, "extra"}, exitUsage, `unexpected arguments ["extra"]`},
	}
	for _, tt := range tests {
		code, _, stderr := calicoPNI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("calico-pni %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	code, stdout, _ := calicoPNI(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "calico-pni ") {
		t.Errorf("version: %d %q", code, stdout)
	}
}
