package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/promotions"
	"github.com/calico-pni/calico-pni/report"
)

// `status --pending` and `status --ready` show what the daemon wrote in
// the staged namespaces' status on the real API server: the namespaces
// below are given by hand the statuses a daemon connected to Goldmane
// writes (controller/flows_server_test.go checks that it does).
func TestStatusPendingAndReady(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Hour).Format(time.RFC3339)
	future := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Hour).Format(time.RFC3339)
	namespaces := []struct {
		name, project string
		pending       *policies.Pending
	}{
		// p-aaaaa: quiet since long enough in both namespaces: ready.
		{"pend-a1", "p-aaaaa", &policies.Pending{Flows: "0", Window: "24h", ReadyAt: past}},
		{"pend-a2", "p-aaaaa", &policies.Pending{Flows: "0", Window: "24h", ReadyAt: past}},
		// p-bbbbb: two peers and more, a deny yesterday: not ready.
		{"pend-b1", "p-bbbbb", &policies.Pending{Flows: "100+", Window: "24h", ReadyAt: future, LastDeny: "ingress of pend-b1 from shop on TCP 5432",
			Peers: []policies.PendingPeer{
				{Direction: "ingress", Peer: "shop (p-b6jcw)", Ports: []string{"TCP 5432"}},
				{Direction: "egress", Peer: "outside the cluster (pub)", Ports: []string{"TCP 443", "UDP 53"}},
			}, MorePeers: 2}},
		// p-ccccc: the daemon has no flow evidence: the answer is unknown.
		{"pend-c1", "p-ccccc", &policies.Pending{Unavailable: "flow evidence unavailable: no flow logs from Goldmane at goldmane.calico-system.svc:7443: connection refused"}},
	}
	for _, n := range namespaces {
		ns := testbed.Namespace(n.name, "c-m4x7q", n.project)
		ns.Annotations[policies.StatusAnnotation] = policies.Status{State: policies.Staged, Project: n.project, Reason: "staged", Pending: n.pending}.Encode()
		if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.DeleteNamespace(context.Background(), n.name) })
	}

	code, stdout, stderr := calicoPNI(t, "", "status", "--pending", "--kubeconfig", kubeconfig)
	if code != exitOK {
		t.Fatalf("status --pending: exit %d, stderr %q", code, stderr)
	}
	header, rows := tableRows(t, stdout)
	if want := []string{"NAMESPACE", "PROJECT", "PENDING DENIES", "DIRECTION", "PEER", "PORTS"}; !reflect.DeepEqual(header, want) {
		t.Errorf("header %q, want %q", header, want)
	}
	wantRows := [][]string{
		{"pend-a1", "p-aaaaa", "0 in 24h", "-", "-", "-"},
		{"pend-a2", "p-aaaaa", "0 in 24h", "-", "-", "-"},
		{"pend-b1", "p-bbbbb", "100+ in 24h", "ingress", "shop (p-b6jcw)", "TCP 5432"},
		{"pend-b1", "p-bbbbb", "100+ in 24h", "egress", "outside the cluster (pub)", "TCP 443, UDP 53"},
		{"pend-b1", "p-bbbbb", "100+ in 24h", "-", "(2 more peers)", "-"},
		{"pend-c1", "p-ccccc", "flow evidence unavailable: no flow logs from Goldmane at goldmane.calico-system.svc:7443: connection refused", "-", "-", "-"},
	}
	if got := onlyNamespaces(rows, "pend-"); !reflect.DeepEqual(got, wantRows) {
		t.Errorf("status --pending rows:\n%q\nwant\n%q\n%s", got, wantRows, stdout)
	}

	code, stdout, stderr = calicoPNI(t, "", "status", "--ready", "--kubeconfig", kubeconfig)
	if code != exitOK {
		t.Fatalf("status --ready: exit %d, stderr %q", code, stderr)
	}
	header, rows = tableRows(t, stdout)
	if want := []string{"PROJECT", "NAMESPACES", "READY", "READY AT", "LAST UNEXPECTED DENY"}; !reflect.DeepEqual(header, want) {
		t.Errorf("header %q, want %q", header, want)
	}
	wantReady := [][]string{
		{"p-aaaaa", "pend-a1,pend-a2", "yes", past, "-"},
		{"p-bbbbb", "pend-b1", "no", future, "ingress of pend-b1 from shop on TCP 5432"},
		{"p-ccccc", "pend-c1", "unknown: flow evidence unavailable: no flow logs from Goldmane at goldmane.calico-system.svc:7443: connection refused", "-", "-"},
	}
	if got := onlyNamespaces(rows, "p-"); !reflect.DeepEqual(got, wantReady) {
		t.Errorf("status --ready rows:\n%q\nwant\n%q\n%s", got, wantReady, stdout)
	}

	code, stdout, _ = calicoPNI(t, "", "status", "--ready", "--project", "p-bbbbb", "-o", "json", "--kubeconfig", kubeconfig)
	var got []report.ReadyRow
	if err := json.Unmarshal([]byte(stdout), &got); code != exitOK || err != nil {
		t.Fatalf("status --ready -o json: exit %d, %v\n%s", code, err, stdout)
	}
	if want := []report.ReadyRow{{Project: "p-bbbbb", Namespaces: []string{"pend-b1"}, ReadyAt: future, LastDeny: "ingress of pend-b1 from shop on TCP 5432"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("status --ready -o json: %+v, want %+v", got, want)
	}

	if code, _, stderr := calicoPNI(t, "", "status", "--ready", "--pending", "--kubeconfig", kubeconfig); code != exitUsage || !strings.Contains(stderr, "not both") {
		t.Errorf("--ready with --pending: exit %d, %q", code, stderr)
	}
}

// onlyNamespaces keeps the rows whose first cell starts with prefix.
func onlyNamespaces(rows [][]string, prefix string) [][]string {
	var out [][]string
	for _, r := range rows {
		if strings.HasPrefix(r[0], prefix) {
			out = append(out, r)
		}
	}
	return out
}

// `cleanup --promotions-configmap` deletes the record of promotions that
// calico-pni made, and leaves a ConfigMap of that name that it did not.
func TestCleanupDeletesThePromotionRecord(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	record := promotions.Record{Kube: e.Kube, Namespace: "default", Name: "cleanup-promotions"}
	if err := record.Add(ctx, promotions.Promotion{Project: "p-b6jcw", At: time.Now().UTC().Truncate(time.Second), QuietSince: time.Now().Add(-200 * time.Hour).UTC().Truncate(time.Second), QuietFor: "168h", Evidence: "flow evidence from goldmane"}); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cleanup-foreign", Namespace: "default"}, Data: map[string]string{"p-b6jcw": "x"}}
	if _, err := e.Kube.CoreV1().ConfigMaps("default").Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Kube.CoreV1().ConfigMaps("default").Delete(context.Background(), "cleanup-foreign", metav1.DeleteOptions{})
	})

	for _, name := range []string{"cleanup-promotions", "cleanup-foreign"} {
		if code, _, stderr := calicoPNI(t, "", "cleanup", "--kubeconfig", kubeconfig, "--settle", "0s", "--promotions-configmap", "default/"+name); code != exitOK {
			t.Fatalf("cleanup of %s: exit %d, %s", name, code, stderr)
		}
	}
	if _, err := e.Kube.CoreV1().ConfigMaps("default").Get(ctx, "cleanup-promotions", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the record is still there after cleanup: %v", err)
	}
	if _, err := e.Kube.CoreV1().ConfigMaps("default").Get(ctx, "cleanup-foreign", metav1.GetOptions{}); err != nil {
		t.Errorf("a ConfigMap calico-pni did not make was deleted: %v", err)
	}
	if code, _, stderr := calicoPNI(t, "", "cleanup", "--kubeconfig", kubeconfig, "--promotions-configmap", "nameonly"); code != exitUsage || !strings.Contains(stderr, "give namespace/name") {
		t.Errorf("--promotions-configmap nameonly: exit %d, %q", code, stderr)
	}
}
