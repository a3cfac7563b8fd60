package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
	"github.com/calico-pni/calico-pni/flows/goldmanetest"
)

// `matrix --observed` reads the connections of Calico's flow logs from a
// Goldmane (served in the test over mutual TLS, with certificates the
// test makes) and lists those the matrix's state decides otherwise than
// Calico did. The table states, for the article fixture and its
// workloads, what each state decides by Calico's documented semantics:
// shop/cart is selected by no user policy (open today) and shop is
// isolated with calico-pni's policies; payments has a default-deny
// ingress NetworkPolicy today.
func TestMatrixObserved(t *testing.T) {
	ca, err := goldmanetest.NewCA("tigera-ca-test")
	if err != nil {
		t.Fatal(err)
	}
	g, err := goldmanetest.Start(goldmanetest.Options{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	client, err := ca.Client("calico-pni-cli")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ca.crt": ca.PEM, "tls.crt": client.Cert, "tls.key": client.Key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour).Truncate(15 * time.Second)
	flow := func(src, srcName, dst, dstName string, port int64, action pb.Action) *pb.Flow {
		return &pb.Flow{Key: &pb.FlowKey{
			SourceNamespace: src, SourceName: srcName, SourceType: pb.EndpointType_WorkloadEndpoint,
			DestNamespace: dst, DestName: dstName, DestType: pb.EndpointType_WorkloadEndpoint,
			DestPort: port, Proto: "TCP", Reporter: pb.Reporter_Dst, Action: action,
		}, StartTime: start.Unix(), EndTime: start.Add(15 * time.Second).Unix()}
	}
	g.Publish(
		// Allowed today; isolation would deny it (sandbox is in no project).
		flow("sandbox", "debug", "shop", "cart-7d8f9c6b5-", 80, pb.Action_Allow),
		// Allowed today and with isolation: the same project.
		flow("shop", "web-6f7c9d8b4-", "shop", "cart-7d8f9c6b5-", 80, pb.Action_Allow),
		// Calico allowed it, yet payments' default-deny-ingress denies it
		// in the input today: the input is not what Calico had. With
		// calico-pni's policies (the default tier of Calico 3.28) its
		// project policy allows it: a policy whose rules match nothing
		// decides nothing, and the tier's default deny is not reached.
		flow("shop", "web-6f7c9d8b4-", "payments", "api-5c6d7e8f9-", 8443, pb.Action_Allow),
		// A pod the input does not have.
		flow("gone", "batch-", "shop", "cart-7d8f9c6b5-", 80, pb.Action_Allow),
	)
	args := []string{"matrix", "-f", fixture, "-f", workloads, "--observed", "--goldmane", g.Address(), "--goldmane-server-name", "localhost", "--goldmane-tls", dir}
	tests := []struct {
		name  string
		extra []string
		state string
		// listed are the connections decided otherwise, in order.
		listed []string
	}{
		{"today", nil, "Today's state decides 1 of them otherwise than Calico did:", []string{
			"shop/web-6f7c9d8b4- -> payments/api-5c6d7e8f9- TCP 8443: Calico allowed 1 flows; here deny",
		}},
		{"with calico-pni's policies", []string{"--preview"}, "The state with calico-pni's policies (--preview) decides 1 of them otherwise than Calico did:", []string{
			"sandbox/debug -> shop/cart-7d8f9c6b5- TCP 80: Calico allowed 1 flows; here deny",
		}},
	}
	for _, tt := range tests {
		code, stdout, stderr := calicoPNI(t, "", append(args, tt.extra...)...)
		if code != exitOK {
			t.Fatalf("%s: exit %d, %s", tt.name, code, stderr)
		}
		_, section, ok := strings.Cut(stdout, "\nObserved in Calico's flow logs")
		if !ok {
			t.Fatalf("%s: no section of observed connections:\n%s", tt.name, stdout)
		}
		lines := strings.Split(strings.TrimSpace(section), "\n")
		if !strings.Contains(lines[0], "3 connections between pods evaluated, 1 with a pod the input does not have") {
			t.Errorf("%s: %q", tt.name, lines[0])
		}
		if len(lines) != 2+len(tt.listed) || lines[1] != tt.state {
			t.Fatalf("%s: section\n%s\nwant %q and %d connections", tt.name, section, tt.state, len(tt.listed))
		}
		for i, want := range tt.listed {
			if !strings.HasPrefix(strings.TrimSpace(lines[2+i]), want) {
				t.Errorf("%s: line %q, want it to start with %q", tt.name, lines[2+i], want)
			}
		}
	}

	if code, _, stderr := calicoPNI(t, "", append(args, "-o", "json")...); code != exitUsage || !strings.Contains(stderr, "in text") {
		t.Errorf("--observed -o json: exit %d, %q", code, stderr)
	}
	g.Stop()
	if code, _, stderr := calicoPNI(t, "", args...); code != exitInvalid || !strings.Contains(stderr, "--observed: listing the flows of Goldmane at "+g.Address()) {
		t.Errorf("Goldmane gone: exit %d, %q", code, stderr)
	}
}
