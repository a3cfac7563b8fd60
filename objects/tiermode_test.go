package objects

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
)

// Tenants' policies the tier-mode tests add to the article fixture: the
// shop team lets every namespace reach its web pods, and lets its cart
// pods out anywhere (shop has no internet label).
const tenantPolicies = `
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: web-from-everyone, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: web}}
    policyTypes: [Ingress]
    ingress:
    - from: [{namespaceSelector: {}}]
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: cart-to-anywhere, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: cart}}
    policyTypes: [Egress]
    egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
`

// previewIndex evaluates the article fixture, its workloads and the
// tenants' policies above, under calico-pni's policies as render computes
// them for a Calico version and an enforcement mode.
func previewIndex(t *testing.T, version calico.Version, enforcement string) *evaluator.Index {
	t.Helper()
	r := NewReader()
	r.KeepSnapshot = true
	for _, path := range articleFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ReadFile(path, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.ReadFile("tenants.yaml", []byte("apiVersion: v1\nkind: List\nitems:"+tenantPolicies)); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Enforcement = enforcement
	cluster, _, err := Preview(r.Finish(), cfg, version)
	if err != nil {
		t.Fatal(err)
	}
	return evaluator.NewIndex(cluster)
}

// In calico-pni's own tier (Calico 3.29+), the platform decides the walls
// and the tenants decide inside them; in the default tier, tenants can
// neither narrow their project nor keep from opening its walls. Each row
// states the verdict in both modes.
func TestTenantsInTierMode(t *testing.T) {
	v330 := calico.Version{Major: 3, Minor: 30}
	tier := previewIndex(t, v330, config.EnforcementTier)
	defaultTier := previewIndex(t, v330, config.EnforcementDefaultTier)
	internet := netip.MustParseAddr("198.51.100.7")
	tests := []struct {
		name           string
		from, to       string // namespace/pod, or an address
		port           uint16
		inDefault, inT evaluator.Verdict
	}{
		// payments denies all ingress by default (its own NetworkPolicy):
		// in tier mode that now holds inside the project too.
		{"a tenant narrows its own project", "shop/web-6f7c9d8b4-xk2lp", "payments/api-5c6d7e8f9-p2q3r", 8080, evaluator.Allow, evaluator.Deny},
		// shop lets every namespace reach web: in tier mode the wall stops
		// a namespace outside the project first (sandbox, in no project,
		// is not isolated: its egress is open).
		{"a tenant cannot let another namespace in", "sandbox/debug", "shop/web-6f7c9d8b4-xk2lp", 8080, evaluator.Allow, evaluator.Deny},
		// Between two isolated projects the source's own egress wall holds
		// in both modes.
		{"another project's egress wall", "redis/redis-master-0", "shop/web-6f7c9d8b4-xk2lp", 8080, evaluator.Deny, evaluator.Deny},
		{"inside the project the tenant's policy still allows", "shop-batch/report-28475620-z8k2d", "shop/web-6f7c9d8b4-xk2lp", 8080, evaluator.Allow, evaluator.Allow},
		// cart's egress policy to 0.0.0.0/0 does not get it out without
		// the internet label...
		{"a tenant cannot open the internet", "shop/cart-7d8f9c6b5-m4n7q", internet.String(), 443, evaluator.Allow, evaluator.Deny},
		// ...which payments has.
		{"the internet label lets out", "payments/api-5c6d7e8f9-p2q3r", internet.String(), 443, evaluator.Allow, evaluator.Allow},
		// What the platform guarantees holds whatever payments' policy says.
		{"monitoring scrapes through a tenant's deny", "cattle-monitoring-system/prometheus-rancher-monitoring-prometheus-0", "payments/api-5c6d7e8f9-p2q3r", 8080, evaluator.Allow, evaluator.Allow},
	}
	endpoint := func(ix *evaluator.Index, where string) *evaluator.Endpoint {
		t.Helper()
		if a, err := netip.ParseAddr(where); err == nil {
			return ix.AddrEndpoint(a)
		}
		ns, pod, _ := strings.Cut(where, "/")
		ep, err := ix.PodEndpoint(ns, pod)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			ix   *evaluator.Index
			want evaluator.Verdict
			name string
		}{{defaultTier, tt.inDefault, "default-tier"}, {tier, tt.inT, "tier"}} {
			r := mode.ix.Evaluate(endpoint(mode.ix, tt.from), endpoint(mode.ix, tt.to), "TCP", tt.port)
			if r.Verdict != mode.want {
				t.Errorf("%s (%s): %s -> %s:%d is %s (%s), want %s", tt.name, mode.name, tt.from, tt.to, tt.port, r.Verdict, r.Reason, mode.want)
			}
		}
	}

	// explain shows the Pass: a connection inside the project is passed
	// by calico-pni's tier, then decided by the namespace's own policy.
	r := tier.Evaluate(endpoint(tier, "shop-batch/report-28475620-z8k2d"), endpoint(tier, "shop/web-6f7c9d8b4-xk2lp"), "TCP", 8080)
	if len(r.Ingress.Hits) < 2 || r.Ingress.Hits[0].Tier != config.TierName || r.Ingress.Hits[0].Action != calico.Pass ||
		r.Ingress.Hits[0].Name != "pni-tier-project-p-b6jcw" || r.Ingress.Hits[1].Tier != evaluator.DefaultTier {
		t.Errorf("the ingress trace of a passed connection: %+v", r.Ingress.Hits)
	}
}
