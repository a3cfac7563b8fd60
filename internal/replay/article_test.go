package replay

import (
	"net/netip"
	"path/filepath"
	"testing"
)

// The article fixture: its cluster and workloads, calico-pni's policies
// and namespace labels as `calico-pni render` computes them (the golden
// files of package policies), and the tenants' policies of
// testdata/tenants.yaml.
var (
	articleCluster   = filepath.Join("..", "..", "testdata", "article-cluster.yaml")
	articleWorkloads = filepath.Join("..", "..", "testdata", "article-workloads.yaml")
	articleTenants   = filepath.Join("testdata", "tenants.yaml")
	// goldenDefault is default-tier mode on Calico 3.28, goldenTier
	// calico-pni's own tier on Calico 3.31.
	goldenDefault = filepath.Join("..", "..", "policies", "testdata", "article.golden.yaml")
	goldenTier    = filepath.Join("..", "..", "policies", "testdata", "article-tier-3.31.golden.yaml")
	// goldenTierV3 is calico-pni's tier on Calico 3.32, in
	// projectcalico.org/v3 with names without the tier prefix: the same
	// verdicts as goldenTier.
	goldenTierV3 = filepath.Join("..", "..", "policies", "testdata", "article-tier-3.32.golden.yaml")
)

// articleModes are the golden files the table states verdicts for.
var articleModes = []struct {
	name, golden string
	want         func(articleRow) Verdict
}{
	{"default tier (3.28)", goldenDefault, func(r articleRow) Verdict { return r.inDefault }},
	{"tier (3.31)", goldenTier, func(r articleRow) Verdict { return r.inTier }},
	{"tier (3.32, v3)", goldenTierV3, func(r articleRow) Verdict { return r.inTier }},
}

// The article's pods and addresses by short name.
var articleNames = map[string]string{
	"web": "shop/web-6f7c9d8b4-xk2lp", "cart": "shop/cart-7d8f9c6b5-m4n7q", "db": "shop/db-0",
	"report": "shop-batch/report-28475620-z8k2d", "payments": "payments/api-5c6d7e8f9-p2q3r",
	"legacy": "legacy/legacy-app-0", "intruder": "intruder/probe-8c7b6a5d4-t5y6u",
	"sandbox": "sandbox/debug", "forger": "sandbox/forger", "squatter": "squatter/app-0", "redis": "redis/redis-master-0",
	"nginx": "ingress-nginx/ingress-nginx-controller-5d8f7c-q8w4z", "dns": "kube-system/coredns-6799fbcd5-h2k8x",
	"agent":      "cattle-system/cattle-cluster-agent-7b9d5c8f4-q9w2e",
	"prometheus": "cattle-monitoring-system/prometheus-rancher-monitoring-prometheus-0",
	// A host-network pod on worker-1: its node's address.
	"kube-proxy": "kube-system/kube-proxy-worker-1",
	"api-server": "api-server", "internet": "internet",
	// Node addresses the probes do not have on their own.
	"edge-1": "edge-1", "cp-1": "cp-1", "metadata": "metadata",
}

// articleProbes are the fixture's probes, with the addresses of nodes
// edge-1 and cp-1 and of a cloud metadata service.
func articleProbes(t *testing.T) *Probes {
	t.Helper()
	p, err := ClusterProbes(articleCluster, articleWorkloads, articleTenants)
	if err != nil {
		t.Fatal(err)
	}
	p.Endpoints = append(p.Endpoints,
		&Endpoint{Name: "edge-1", Addr: netip.MustParseAddr("10.0.1.5"), Node: "edge-1"},
		&Endpoint{Name: "cp-1", Addr: netip.MustParseAddr("10.0.0.11"), Node: "cp-1"},
		&Endpoint{Name: "metadata", Addr: netip.MustParseAddr("169.254.169.254")})
	return p
}

// articleState is the fixture's state under one golden file.
func articleState(t *testing.T, golden string) *State {
	t.Helper()
	s, err := LoadState(articleCluster, articleWorkloads, golden, articleTenants)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// articleRow is a connection of the article fixture and its verdict
// under calico-pni's policies in default-tier mode (article.golden.yaml)
// and in calico-pni's own tier (article-tier-3.31.golden.yaml), derived
// by hand from docs/policies.md and Calico's documented semantics.
type articleRow struct {
	from, to          string
	protocol          string
	port              uint16
	inDefault, inTier Verdict
	why               string
}

const (
	A = Allowed
	D = Denied
)

var articleTable = []articleRow{
	// Inside a project.
	{"web", "cart", "TCP", 80, A, A, "same project: pni-project-p-b6jcw allows both sides (tier: passes, and no tenant policy selects cart)"},
	{"report", "web", "TCP", 8080, A, A, "same project; web's own policy web-from-everyone admits every pod"},
	{"web", "payments", "TCP", 8443, A, D, "payments denies all ingress itself: in default-tier mode pni-project (order 2000) still allows it, in tier mode the project is passed and the tenant's deny holds"},
	{"web", "report", "TCP", 9100, A, D, "the batch team admits only addresses outside the pod network: default tier the project allow overrides it, tier mode it narrows the project"},
	{"web", "db", "TCP", 5432, A, A, "db-guard (order 500) allows web on the named port postgres (5432)"},
	{"cart", "db", "TCP", 5432, A, D, "db-guard admits only web: the project allow overrides it in default-tier mode, not in tier mode"},
	{"legacy", "db", "TCP", 5432, D, D, "db-guard denies the legacy namespace before anything allows it"},
	// Another project, and the redis role.
	{"redis", "web", "TCP", 8080, D, D, "another project: redis's egress wall (pni-project-p-mcb29 reaches only its project)"},
	{"web", "redis", "TCP", 6379, A, A, "the redis role: shop carries allow_redis, redis role_redis (pni-role-redis both sides), and the redis team's policy admits allow_redis namespaces on its named port"},
	{"web", "redis", "TCP", 6380, D, D, "the role is on TCP 6379 only"},
	{"report", "redis", "TCP", 6379, D, D, "shop-batch has no allow_redis label: another project"},
	{"intruder", "redis", "TCP", 6379, A, D, "intruder is in p-mcb29 (Rancher's annotation): the project allows it; in tier mode the redis team's own policy admits only allow_redis namespaces"},
	// Forged labels: intruder claims p-b6jcw by label, squatter claims it without Rancher's annotation.
	{"intruder", "cart", "TCP", 80, D, D, "the projectId label is not believed: intruder's egress wall keeps it in p-mcb29"},
	{"intruder", "web", "TCP", 8080, D, D, "intruder's egress wall, whatever web admits"},
	{"squatter", "cart", "TCP", 80, D, D, "squatter is isolated on its own (pni-namespace-squatter), in no project"},
	{"cart", "squatter", "TCP", 80, D, D, "cart's tenant egress policy opens its side in default-tier mode, squatter's ingress wall holds in both"},
	{"forger", "cart", "TCP", 80, D, D, "a pod's own pcns. labels are stripped: the forged System project label does not pass pni-allow-from-system-project"},
	{"forger", "payments", "TCP", 8443, D, D, "forged pcns./pcsa. and projectcalico.org labels do not make a pod Rancher's Prometheus (pni-allow-monitoring-ingress)"},
	// The System project and isolated namespaces.
	{"agent", "cart", "TCP", 80, A, A, "the System project reaches isolated namespaces (pni-allow-from-system-project; passed in tier mode)"},
	{"agent", "payments", "TCP", 8443, A, D, "System project to a namespace that denies all ingress: default tier the exception overrides the tenant, tier mode the tenant decides"},
	{"prometheus", "payments", "TCP", 8443, A, A, "monitoring scrapes through a tenant's deny: pni-tier-allow-monitoring-ingress allows before any tenant policy"},
	{"web", "agent", "TCP", 80, D, D, "isolated egress to the System project is denied: it is another project"},
	{"web", "prometheus", "TCP", 9090, D, D, "isolated egress to the System project is denied"},
	{"web", "dns", "TCP", 9153, D, D, "the DNS pods' metrics port is not DNS"},
	// DNS and the Kubernetes API.
	{"web", "dns", "UDP", 53, A, A, "pni-allow-dns: UDP 53 to k8s-app=kube-dns in kube-system (Allow in the tier)"},
	{"web", "dns", "TCP", 53, A, A, "pni-allow-dns: TCP 53 too"},
	{"redis", "dns", "UDP", 53, A, A, "DNS from another isolated project"},
	{"squatter", "dns", "UDP", 53, A, A, "DNS from a namespace isolated on its own"},
	{"web", "api-server", "TCP", 6443, A, A, "pni-allow-kube-api: the endpoints of default/kubernetes (services match), Allow in the tier"},
	{"web", "api-server", "TCP", 443, D, D, "the API server's endpoint listens on 6443; 443 is the Service port, not what egress sees after DNAT"},
	{"squatter", "api-server", "TCP", 6443, A, A, "the Kubernetes API from a namespace isolated on its own"},
	// The internet label, and tenants opening walls.
	{"payments", "internet", "TCP", 443, A, A, "payments carries network-policy/allow_internet (passed in tier mode, no tenant egress policy)"},
	{"payments", "cp-1", "TCP", 22, D, D, "the internet exception leaves out the nodes"},
	{"payments", "metadata", "TCP", 80, D, D, "the internet exception leaves out link-local: no cloud metadata service"},
	{"web", "internet", "TCP", 443, D, D, "shop has no internet label"},
	{"cart", "internet", "TCP", 443, A, D, "cart's tenant policy allows egress to 0.0.0.0/0: it opens the wall in default-tier mode, not in tier mode"},
	{"sandbox", "web", "TCP", 8080, A, D, "web-from-everyone admits every namespace: in default-tier mode it opens the wall, in tier mode the wall stops sandbox first"},
	{"internet", "report", "TCP", 9100, A, D, "the batch team opened its metrics port to the world: default-tier mode it does, tier mode the wall stops it"},
	// NodePort, host ports and host networks.
	{"internet", "web", "TCP", 8080, A, D, "the NodePort Service web admits outside clients (pni-allow-external-services); in tier mode it is passed and web's own policies admit no outside address"},
	{"internet", "cart", "TCP", 80, D, D, "cart's Service is not a NodePort"},
	{"internet", "nginx", "TCP", 80, A, A, "host port 80 of the ingress controller from outside (pni-allow-host-ports)"},
	{"internet", "nginx", "TCP", 443, A, A, "host port 443 from outside"},
	{"cart", "nginx", "TCP", 80, D, D, "host ports do not admit pods of other projects (the source excludes every pod by its orchestrator label)"},
	{"edge-1", "cart", "TCP", 80, A, A, "the edge node's host network (a hostNetwork ingress controller) reaches isolated pods (pni-allow-from-host-network)"},
	{"kube-proxy", "db", "TCP", 5432, A, D, "worker-1's host network reaches db on worker-2; in tier mode it is passed and db-guard admits only web"},
	// The ingress controller.
	{"nginx", "cart", "TCP", 80, A, A, "the ingress controller reaches backend namespaces (network-policy/ingress=nginx) on 80 and 443, both sides"},
	{"nginx", "web", "TCP", 8080, D, D, "calico-pni's ingress exception covers 80 and 443: the controller's own egress wall stops 8080 (the README's example)"},
	// Opted out and unassigned namespaces.
	{"legacy", "cart", "TCP", 80, A, A, "an opted-out namespace stays in its project for the project's allows"},
	{"web", "legacy", "TCP", 8080, A, A, "into the opted-out namespace: web's project egress, and legacy has no policy"},
	{"sandbox", "legacy", "TCP", 8080, A, A, "neither namespace is isolated: no policy at all"},
	{"sandbox", "internet", "TCP", 443, A, A, "a namespace in no project is open, as under Rancher"},
	{"internet", "sandbox", "TCP", 80, A, A, "and open from outside"},
	{"web", "sandbox", "TCP", 80, D, D, "isolated egress to a namespace in no project"},
	{"sandbox", "cart", "TCP", 80, D, D, "into an isolated namespace from one in no project"},
}

// conns builds the table's connections.
func (row articleRow) conn(t *testing.T, p *Probes) Conn {
	t.Helper()
	c, err := p.Conn(articleNames[row.from], articleNames[row.to], row.protocol, row.port)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The reference evaluator agrees with the table stated by hand.
func TestArticleTable(t *testing.T) {
	if len(articleTable) < 40 {
		t.Fatalf("the table has %d rows; it must cover at least 40 connections", len(articleTable))
	}
	probes := articleProbes(t)
	for _, mode := range articleModes {
		ix := NewIndex(articleState(t, mode.golden))
		for _, row := range articleTable {
			c := row.conn(t, probes)
			d, err := ix.Evaluate(c)
			if err != nil {
				t.Errorf("%s: %s: %v", mode.name, c, err)
				continue
			}
			if d.Verdict != mode.want(row) {
				t.Errorf("%s: %s is %s, want %s (%s)", mode.name, c, d, mode.want(row), row.why)
			}
		}
	}
}
