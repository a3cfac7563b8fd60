package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/evaluator"
)

// rancherFixture is the article's cluster with Rancher's own project
// isolation on (internal/rancherisolation).
var rancherFixture = filepath.Join("..", "..", "testdata", "article-rancher-isolation.yaml")

// Pods of the fixture.
const (
	webPod     = "shop/web-6f7c9d8b4-xk2lp"                            // behind the NodePort Service web (np-web)
	cartPod    = "shop/cart-7d8f9c6b5-m4n7q"                           // no policy of its users selects it
	paymentPod = "payments/api-5c6d7e8f9-p2q3r"                        // its users' default-deny-ingress selects it
	ingressPod = "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z" // host ports 80, 443 (hp-<pod>)
	promPod    = "cattle-monitoring-system/prometheus-rancher-monitoring-prometheus-0"
	dnsPod     = "kube-system/coredns-6799fbcd5-h2k8x"
)

// verdicts are a connection's verdicts in the three states of a switch
// from Rancher's isolation to calico-pni: today (Rancher's isolation),
// calico-pni beside it (--preview), calico-pni alone (--preview
// --without-rancher). a: allow, d: deny.
type verdicts string

// TestRancherSwitchOver states, connection by connection, what each step
// of the switch from Rancher's project isolation to calico-pni does, in
// both of calico-pni's modes, and checks the evaluator agrees. The
// expected verdicts come from what Rancher's policies admit (rancher/rancher
// pkg/controllers/managementuser/networkpolicy/, as docs/migrate-from-rancher.md
// sums up) and what calico-pni's admit (docs/policies.md), not from the
// evaluator.
func TestRancherSwitchOver(t *testing.T) {
	tests := []struct {
		why         string
		from, to    string
		port        int
		defaultTier verdicts // enforcement default-tier (Calico before 3.29)
		tier        verdicts // enforcement tier (the auto default from Calico 3.29)
	}{
		// Rancher's isolation allows, calico-pni alone denies.
		{"egress to a System-project pod: Rancher writes no egress policy (rancher#38518) and np-default-allow-all admits everything into System namespaces; pni-deny-egress admits DNS and the API server only",
			webPod, promPod, 9090, "add", "add"},
		{"egress to the DNS pods on another port than DNS's", webPod, dnsPod, 9153, "add", "add"},
		{"DNS itself stays allowed (pni-allow-dns)", webPod, dnsPod, 53, "aaa", "aaa"},
		{"egress to a namespace in no project", webPod, "sandbox/debug", 80, "add", "add"},
		{"egress outside the cluster", webPod, "203.0.113.50", 443, "add", "add"},
		{"outside the cluster with the internet label stays allowed (pni-allow-internet)", paymentPod, "203.0.113.50", 443, "aaa", "aaa"},
		{"another project to a NodePort backend: np-web admits any source (rancher#49430); calico-pni denies redis's egress already beside it",
			"redis/redis-master-0", webPod, 8080, "add", "add"},
		{"a namespace in no project to a NodePort backend: in the default tier np-web is read before pni-deny-ingress, so only switching it off closes it; calico-pni's tier denies before it",
			"sandbox/debug", webPod, 8080, "aad", "add"},
		{"another project to a host-port pod (hp-<pod> admits any source)", webPod, ingressPod, 443, "add", "add"},
		{"a namespace in no project to a host-port pod", "sandbox/debug", ingressPod, 80, "aad", "add"},
		{"the forged-label namespace squatter (project label, no annotation) is in p-b6jcw for Rancher, which reads the label; alone in no project for calico-pni",
			"squatter/app-0", cartPod, 80, "add", "add"},
		{"intruder, labelled p-b6jcw but annotated p-mcb29, reaches p-b6jcw under Rancher", "intruder/probe-8c7b6a5d4-t5y6u", cartPod, 80, "add", "add"},
		{"and p-b6jcw reaches squatter", cartPod, "squatter/app-0", 80, "add", "add"},

		// From outside, to what is exposed: kept, except in tier mode where
		// a tenant's own policy selects the backend (calico-pni passes
		// external traffic to the tenants; web-from-ingress admits only
		// the ingress controller).
		{"outside to a NodePort backend that a tenant's policy selects", "198.51.100.7", webPod, 8080, "aaa", "aad"},
		{"outside to a host-port pod that no tenant policy selects", "198.51.100.7", ingressPod, 443, "aaa", "aaa"},

		// Tier mode: calico-pni passes the project's and the System
		// project's traffic to the tenants' policies, and today Rancher's
		// np-default is one of them. Where a tenant's own policy selects a
		// pod, that traffic is denied once np-default is gone; in the
		// default tier pni-project-<id> and pni-allow-from-system-project
		// allow it themselves.
		{"within the project, to a pod a tenant's policy selects (web-from-ingress)", cartPod, webPod, 8080, "aaa", "aad"},
		{"within the project, to a namespace whose tenants deny ingress by default (payments)", cartPod, paymentPod, 8443, "aaa", "aad"},
		{"from the System project to payments", dnsPod, paymentPod, 8443, "aaa", "aad"},
		{"monitoring stays allowed: calico-pni guarantees it (pni-tier-allow-monitoring-ingress allows)", promPod, paymentPod, 8443, "aaa", "aaa"},

		// Rancher's isolation denies, calico-pni allows.
		{"legacy opted out of calico-pni (calico-pni.io/isolation: disabled); Rancher's np-default isolates it", "sandbox/debug", "legacy/legacy-app-0", 8080, "dda", "dda"},
		{"the ingress controller to a backend labelled for it (pni-allow-ingress-controller); in tier mode passed, and Rancher's np-default denies it until it is gone",
			ingressPod, cartPod, 80, "daa", "dda"},
		{"intruder is in p-mcb29 by its annotation for calico-pni; in tier mode redis-from-consumers still decides", "intruder/probe-8c7b6a5d4-t5y6u", "redis/redis-master-0", 6379, "daa", "ddd"},
		{"a node's own address: hn-nodes lists only Calico's tunnel addresses (rancher#33979), pni-allow-from-host-network the node IPs too", "10.0.0.21", cartPod, 80, "daa", "dda"},
		{"a node's tunnel address is admitted by both", "10.42.1.1", cartPod, 80, "aaa", "aaa"},
	}
	for _, mode := range []struct {
		name    string
		version string
		want    func(int) verdicts
	}{
		{"default-tier", "v3.28.5", func(i int) verdicts { return tests[i].defaultTier }},
		{"tier", "v3.30.0", func(i int) verdicts { return tests[i].tier }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			in := evalInput{files: files{rancherFixture}, calicoVersion: mode.version, withoutRancher: true}
			loaded, err := in.load(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			states := []*evaluator.Index{in.index(loaded.today), in.index(loaded.preview), in.index(loaded.alone)}
			for i, tt := range tests {
				got := ""
				for _, ix := range states {
					src, _, err := resolveEndpoint(ix, tt.from)
					if err != nil {
						t.Fatal(err)
					}
					dst, _, err := resolveEndpoint(ix, tt.to)
					if err != nil {
						t.Fatal(err)
					}
					got += string(ix.Evaluate(src, dst, "TCP", uint16(tt.port)).Verdict)[:1]
				}
				if want := string(mode.want(i)); got != want {
					t.Errorf("%s -> %s:%d: %s (today, beside, alone), want %s: %s", tt.from, tt.to, tt.port, got, want, tt.why)
				}
			}
		})
	}
}

// TestRancherNaming: explain and matrix say which policies are Rancher's,
// in text and JSON, and the deciding one of a side or a cell.
func TestRancherNaming(t *testing.T) {
	code, text, stderr := calicoPNI(t, "", "explain", "-f", rancherFixture, "--from", "sandbox/debug", "--to", webPod, "--port", "8080")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"3. shop/knp.default.np-web (Kubernetes NetworkPolicy in shop, order 1000; np-web of Rancher's project isolation: ingress from anywhere, other projects included (rancher#49430), to the pods of Service web on TCP 8080): ingress rule 0 matched: Allow",
		"2. shop/knp.default.np-default (Kubernetes NetworkPolicy in shop, order 1000; np-default of Rancher's project isolation: ingress from project p-b6jcw and the System project p-7xq2n",
		"Deciding policy shop/knp.default.np-web: Rancher's project isolation (np-web).",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("explain lacks %q:\n%s", want, text)
		}
	}
	_, out, _ := calicoPNI(t, "", "explain", "-f", rancherFixture, "--from", "sandbox/debug", "--to", webPod, "--port", "8080", "-o", "json")
	var e struct {
		Ingress struct {
			Hits []struct{ Name, WrittenBy string } `json:"policyHits"`
		} `json:"ingress"`
		Owners map[string]struct{ Name, Description string } `json:"owners"`
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Ingress.Hits) != 1 || e.Ingress.Hits[0].WrittenBy != "Rancher's project isolation (np-web)" {
		t.Errorf("ingress hits %+v", e.Ingress.Hits)
	}
	if o := e.Owners["shop/knp.default.hn-nodes"]; o.Name != "Rancher's project isolation (hn-nodes)" || !strings.Contains(o.Description, "10.42.3.0/32") {
		t.Errorf("owners %+v", e.Owners)
	}
	_, matrix, _ := calicoPNI(t, "", "matrix", "-f", rancherFixture, "--by", "namespace")
	if want := "allowed by shop/knp.default.np-web [Rancher's project isolation (np-web)]; denied by shop/knp.default.np-default [Rancher's project isolation (np-default)] (end of tier default)"; !strings.Contains(matrix, want) {
		t.Errorf("matrix lacks %q:\n%s", want, matrix)
	}
	_, page, _ := calicoPNI(t, "", "matrix", "-f", rancherFixture, "--by", "namespace", "-o", "html")
	if want := `shop/knp.default.np-web [Rancher's project isolation (np-web)]`; !strings.Contains(page, want) {
		t.Errorf("the HTML page does not name np-web as Rancher's (%q)", want)
	}
	_, js, _ := calicoPNI(t, "", "matrix", "-f", rancherFixture, "--compare", "--without-rancher", "-o", "json")
	var m struct {
		Before, After string
		Today         struct {
			Owners map[string]struct{ Name string } `json:"owners"`
		} `json:"today"`
		Preview struct {
			Policies string         `json:"policies"`
			Owners   map[string]any `json:"owners"`
		} `json:"preview"`
	}
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	if m.Before != "today" || !strings.Contains(m.After, "alone") || m.Today.Owners["ingress-nginx/knp.default.np-default"].Name != "Rancher's project isolation (np-default)" ||
		len(m.Preview.Owners) != 0 || !strings.Contains(m.Preview.Policies, "without Rancher's project isolation") {
		t.Errorf("matrix JSON: before %q after %q, today's owners %v, preview's %v (%s)", m.Before, m.After, m.Today.Owners, m.Preview.Owners, m.Preview.Policies)
	}
}

// TestRancherGolden keeps the switch-over's outputs on the fixture.
func TestRancherGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"matrix-rancher-alone.txt", []string{"matrix", "--compare", "--without-rancher"}},
		{"matrix-rancher-switch-off.txt", []string{"matrix", "--compare", "--before", "preview", "--without-rancher"}},
		{"matrix-rancher-switch-off-tier.txt", []string{"matrix", "--compare", "--before", "preview", "--without-rancher", "--calico-version", "v3.30.0"}},
		{"explain-rancher-nodeport.txt", []string{"explain", "--from", "sandbox/debug", "--to", webPod, "--port", "8080"}},
		{"explain-rancher-nodeport-alone.txt", []string{"explain", "--from", "sandbox/debug", "--to", webPod, "--port", "8080", "--preview", "--without-rancher"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := calicoPNI(t, "", append(tt.args, "-f", rancherFixture)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, tt.name, stdout)
		})
	}
}

// TestWithoutRancherUsage: the flags that compare the switch's states
// are refused where they mean nothing, and a cluster without Rancher's
// isolation gets a note.
func TestWithoutRancherUsage(t *testing.T) {
	files := []string{"-f", fixture, "-f", workloads}
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{append([]string{"explain", "--from", webPod, "--to", "shop", "--without-rancher"}, files...), exitUsage, "give it with --preview"},
		{append([]string{"matrix", "--without-rancher"}, files...), exitUsage, "give it with --preview or --compare"},
		{append([]string{"matrix", "--compare", "--before", "preview"}, files...), exitUsage, "give it with --compare and --without-rancher"},
		{append([]string{"matrix", "--compare", "--before", "yesterday", "--without-rancher"}, files...), exitUsage, `--before "yesterday": use today or preview`},
		{append([]string{"matrix", "--compare", "--without-rancher"}, files...), exitOK, "the input has no NetworkPolicy of Rancher's project isolation (label cattle.io/creator: norman): --without-rancher leaves nothing out"},
	}
	for _, tt := range tests {
		code, _, stderr := calicoPNI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("calico-pni %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
}

// TestRancherKeepInsideTheWalls: in tier mode, a policy of the users
// that admits every ingress, in each namespace with policies of its own,
// keeps what Rancher's policies allowed inside the walls once they are
// gone, and opens no wall (docs/migrate-from-rancher.md, step 4).
func TestRancherKeepInsideTheWalls(t *testing.T) {
	data, err := os.ReadFile(rancherFixture)
	if err != nil {
		t.Fatal(err)
	}
	keep := ""
	for _, ns := range []string{"payments", "shop", "shop-batch"} {
		keep += "---\n{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: allow-what-the-walls-pass, namespace: " + ns + "}, spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{}]}}\n"
	}
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, append(data, []byte(keep)...), 0o600); err != nil {
		t.Fatal(err)
	}
	in := evalInput{files: files{path}, calicoVersion: "v3.30.0", withoutRancher: true}
	loaded, err := in.load(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ix := in.index(loaded.alone)
	for _, tt := range []struct {
		from, to string
		port     uint16
		want     evaluator.Verdict
	}{
		{cartPod, webPod, 8080, evaluator.Allow},
		{cartPod, paymentPod, 8443, evaluator.Allow},
		{dnsPod, paymentPod, 8443, evaluator.Allow},
		{"198.51.100.7", webPod, 8080, evaluator.Allow},
		// The walls still stand.
		{"sandbox/debug", webPod, 8080, evaluator.Deny},
		{"sandbox/debug", paymentPod, 8443, evaluator.Deny},
		{"intruder/probe-8c7b6a5d4-t5y6u", cartPod, 80, evaluator.Deny},
	} {
		src, _, err := resolveEndpoint(ix, tt.from)
		if err != nil {
			t.Fatal(err)
		}
		dst, _, err := resolveEndpoint(ix, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		if r := ix.Evaluate(src, dst, "TCP", tt.port); r.Verdict != tt.want {
			t.Errorf("%s -> %s:%d: %s (%s), want %s", tt.from, tt.to, tt.port, r.Verdict, r.Reason, tt.want)
		}
	}
}
