package testbed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Run is a TestMain for a package with real-server tests: it starts one API
// server for the whole package, runs the tests and stops it. With -short it
// starts nothing and the real-server tests skip themselves (see Need);
// without -short, a missing API server fails the run, it is never skipped.
func Run(m *testing.M, opts Options, env **Env) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	e, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "real-server tests:", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the API server:", err)
	}
	return code
}

// Need skips a real-server test under -short, and fails it if the API
// server is missing otherwise.
func Need(t testing.TB, env *Env) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("real-server test: run without -short")
	}
	if env == nil {
		t.Fatal("the real API server did not start (see the error above)")
	}
	return env
}

// WriteKubeconfig writes an admin kubeconfig for the API server into dir
// and returns its path.
func (e *Env) WriteKubeconfig(dir string) (string, error) {
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, e.env.KubeConfig, 0o600)
}
