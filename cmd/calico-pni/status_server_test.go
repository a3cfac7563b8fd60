package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/report"
)

// serverStatuses reads every namespace's status annotation from the API
// server, as the expected answer: "" for a namespace without one.
func serverStatuses(t *testing.T, e *testbed.Env) map[string]string {
	t.Helper()
	list, err := e.Kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ns := range list.Items {
		out[ns.Name] = ns.Annotations[policies.StatusAnnotation]
	}
	return out
}

var tableColumns = regexp.MustCompile(`\s{2,}`)

// tableRows splits the table into its header and rows of cells.
func tableRows(t *testing.T, out string) ([]string, [][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, tableColumns.Split(strings.TrimSpace(l), -1))
	}
	return tableColumns.Split(strings.TrimSpace(lines[0]), -1), rows
}

// `calico-pni status` shows what the daemon wrote on every namespace of the
// real API server, filtered by project and state, as a table, a wide table
// or JSON, and exits 1 while a namespace it shows is in error.
func TestStatus(t *testing.T) {
	e := testbed.Need(t, env)
	loadFixtureOnce(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	kubeconfig, err := e.WriteKubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cluster.Cleanup(context.Background(), e.Kube, e.Dynamic, discovery.NewDiscoveryClientForConfigOrDie(e.Config), cluster.CleanupOptions{Workers: 16}); err != nil {
			t.Error(err)
		}
		_ = e.DeleteNamespace(context.Background(), "status-newcomer")
		_ = e.DeleteNamespace(context.Background(), "status-staged")
		_ = e.Kube.CoordinationV1().Leases("default").Delete(context.Background(), "calico-pni", metav1.DeleteOptions{})
	})

	// Before calico-pni ran, no namespace has a status: all unknown, none
	// in error, and a hint that calico-pni may not be running.
	if got := serverStatuses(t, e); slices.ContainsFunc(slices.Collect(maps.Values(got)), func(s string) bool { return s != "" }) {
		t.Fatalf("a namespace already has a status before the daemon ran: %v", got)
	}
	code, stdout, stderr := calicoPNI(t, "", "status", "--kubeconfig", kubeconfig)
	if code != exitOK || !strings.Contains(stderr, "is calico-pni running?") {
		t.Errorf("before the daemon: exit %d, stderr %q", code, stderr)
	}
	if _, rows := tableRows(t, stdout); len(rows) == 0 || slices.ContainsFunc(rows, func(r []string) bool { return r[1] != "unknown" }) {
		t.Errorf("before the daemon, want every namespace unknown:\n%s", stdout)
	}

	// The daemon writes every status, then stops so that they hold still;
	// a namespace created afterwards has none.
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("isolateUnassigned: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	d := testDaemon(t, dctx, "status-daemon", kubeconfig, config)
	testbed.Eventually(t, 30*time.Second, func() error {
		if !d.leading.Load() || !d.controller.Ready() {
			return fmt.Errorf("the daemon has not completed a pass")
		}
		return nil
	})
	stop()
	<-d.done
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace("status-newcomer", "c-m4x7q", "p-b6jcw"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The daemon stages isolation only on Calico 3.30 and later, and this
	// API server stands for 3.28: one namespace is given by hand the status
	// the daemon writes on the namespaces of a staged project.
	staged := testbed.Namespace("status-staged", "c-m4x7q", "p-mcb29")
	staged.Annotations[policies.StatusAnnotation] = policies.Status{
		State: policies.Staged, Project: "p-mcb29",
		Reason:   "in project p-mcb29; staged, not enforced (projects.stage): Calico's flow logs show what isolation would deny",
		Policies: []string{"pni-staged-project-p-mcb29"},
	}.Encode()
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, staged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]policies.Status{}
	var inError []string
	for name, value := range serverStatuses(t, e) {
		if value == "" {
			want[name] = policies.Status{State: report.StateUnknown, Reason: "no calico-pni status yet"}
			continue
		}
		st, err := policies.DecodeStatus(value)
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		want[name] = st
		if st.State == policies.Error {
			inError = append(inError, name)
		}
	}
	slices.Sort(inError)
	if len(inError) == 0 || want["status-newcomer"].State != report.StateUnknown || want["shop"].State != policies.Isolated || want["status-staged"].State != policies.Staged {
		t.Fatalf("the fixture should give error, unknown, isolated and staged namespaces: %+v", want)
	}

	t.Run("table", func(t *testing.T) {
		code, stdout, stderr := calicoPNI(t, "", "status", "--kubeconfig", kubeconfig)
		if code != exitInvalid || !strings.Contains(stderr, fmt.Sprintf("%d namespaces in error: %s", len(inError), strings.Join(inError, ", "))) {
			t.Errorf("exit %d, stderr %q; want 1 and the namespaces in error %v", code, stderr, inError)
		}
		header, rows := tableRows(t, stdout)
		if !slices.Equal(header, []string{"NAMESPACE", "STATE", "PROJECT", "POLICIES", "REASON / PROBLEM"}) {
			t.Errorf("header %q", header)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r[0])
			st := want[r[0]]
			why := st.Reason
			if len(st.Problems) > 0 {
				why = st.Problems[0]
			}
			if len(r) != 5 || r[1] != string(st.State) || r[2] != dash(st.Project) || r[3] != strconv.Itoa(len(st.Policies)) || !strings.HasPrefix(r[4], prefix(dash(why), 99)) {
				t.Errorf("row %q, want the status %+v", r, st)
			}
		}
		if !slices.IsSorted(names) || len(names) != len(want) {
			t.Errorf("rows for %v, want every namespace (%d) sorted by name", names, len(want))
		}
	})

	t.Run("json", func(t *testing.T) {
		code, stdout, _ := calicoPNI(t, "", "status", "--kubeconfig", kubeconfig, "-o", "json")
		if code != exitInvalid {
			t.Errorf("exit %d, want 1", code)
		}
		var rows []report.StatusRow
		if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		got := map[string]policies.Status{}
		for _, r := range rows {
			got[r.Namespace] = r.Status
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("JSON statuses differ from the server's:\n got %+v\nwant %+v", got, want)
		}
		// The JSON holds the status as the daemon wrote it, with the name first.
		var raw []map[string]any
		_ = json.Unmarshal([]byte(stdout), &raw)
		if len(raw) == 0 || raw[0]["namespace"] == nil || raw[0]["state"] == nil {
			t.Errorf("JSON rows %v", raw)
		}
	})

	t.Run("filters", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			keep func(policies.Status) bool
		}{
			{[]string{"--project", "p-b6jcw"}, func(s policies.Status) bool { return s.Project == "p-b6jcw" }},
			{[]string{"--project", "c-m4x7q:p-b6jcw"}, func(s policies.Status) bool { return s.Project == "p-b6jcw" }},
			{[]string{"--state", "isolated,exempt"}, func(s policies.Status) bool { return s.State == policies.Isolated || s.State == policies.Exempt }},
			{[]string{"--state", "error"}, func(s policies.Status) bool { return s.State == policies.Error }},
			{[]string{"--state", "unknown"}, func(s policies.Status) bool { return s.State == report.StateUnknown }},
			{[]string{"--state", "staged"}, func(s policies.Status) bool { return s.State == policies.Staged }},
			{[]string{"--state", "staged,isolated"}, func(s policies.Status) bool { return s.State == policies.Staged || s.State == policies.Isolated }},
			{[]string{"--project", "p-mcb29", "--state", "open"}, func(s policies.Status) bool { return false }},
		} {
			args := append([]string{"status", "--kubeconfig", kubeconfig, "-o", "json"}, tt.args...)
			code, stdout, stderr := calicoPNI(t, "", args...)
			var rows []report.StatusRow
			if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
				t.Fatalf("%v: %v\n%s", tt.args, err, stdout)
			}
			var got, wantNames []string
			wantCode := exitOK
			for _, r := range rows {
				got = append(got, r.Namespace)
			}
			for name, st := range want {
				if tt.keep(st) {
					wantNames = append(wantNames, name)
					if st.State == policies.Error {
						wantCode = exitInvalid
					}
				}
			}
			slices.Sort(wantNames)
			if !slices.Equal(got, wantNames) || code != wantCode {
				t.Errorf("%v: namespaces %v, exit %d (%s); want %v, exit %d", tt.args, got, code, stderr, wantNames, wantCode)
			}
		}
	})

	t.Run("wide", func(t *testing.T) {
		code, stdout, _ := calicoPNI(t, "", "status", "--kubeconfig", kubeconfig, "-o", "wide", "--state", "error,isolated")
		header, rows := tableRows(t, stdout)
		if code != exitInvalid || !slices.Equal(header, []string{"NAMESPACE", "STATE", "ISOLATED", "PROJECT", "POLICIES", "REASON", "PROBLEMS", "POLICY NAMES", "RANCHER", "TRANSITION"}) {
			t.Errorf("exit %d, header %q", code, header)
		}
		for _, r := range rows {
			st := want[r[0]]
			if len(r) != 10 || r[2] != strconv.FormatBool(st.Isolated) || r[6] != dash(strings.Join(st.Problems, "; ")) || r[7] != dash(strings.Join(st.Policies, ",")) ||
				r[8] != dash(strings.Join(st.Rancher, ",")) || r[9] != dash(st.Transition) {
				t.Errorf("wide row %q, want the status %+v", r, st)
			}
		}
	})
}

// Bad flags and unreachable clusters get a clear message and exit codes
// 2 and 1.
func TestStatusErrors(t *testing.T) {
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"status", "-o", "yaml"}, exitUsage, `-o "yaml": use wide or json`},
		{[]string{"status", "--state", "isolated,broken"}, exitUsage, `--state "broken": use isolated, staged, exempt, open, error or unknown`},
		{[]string{"status", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{[]string{"status", "-h"}, exitOK, "1 a namespace shown is in error"},
		{[]string{"status", "--kubeconfig", filepath.Join(dir, "missing")}, exitInvalid, "--kubeconfig"},
		{[]string{"status", "--kubeconfig", unreachable, "--timeout", "5s"}, exitInvalid, "listing namespaces"},
	}
	for _, tt := range tests {
		code, _, stderr := calicoPNI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("calico-pni %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
}

// dash is how the status table shows an empty field.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// prefix is the first n runes of s: the table cuts long reasons.
func prefix(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
