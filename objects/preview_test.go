package objects

import (
	"net/netip"
	"os"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// TestPreview: calico-pni's policies and namespace labels replace
// whatever calico-pni wrote before; the users' policies stay.
func TestPreview(t *testing.T) {
	set := readArticle(t, true)
	users := len(set.Cluster.Policies)
	set.Cluster.Policies = append(set.Cluster.Policies, evaluator.Policy{Kind: evaluator.GlobalNetworkPolicy, Name: "pni-old", Managed: true})
	for i := range set.Cluster.Namespaces {
		if set.Cluster.Namespaces[i].Name == "sandbox" {
			set.Cluster.Namespaces[i].Labels = map[string]string{policies.IsolatedLabel: "true", "team": "qa"}
		}
	}
	c, d, err := Preview(set, config.Default(), calico.Version{Major: 3, Minor: 28})
	if err != nil {
		t.Fatal(err)
	}
	managed := 0
	for _, p := range c.Policies {
		if p.Name == "pni-old" {
			t.Error("the old calico-pni policy is still there")
		}
		if p.Managed {
			managed++
		}
	}
	if managed != len(d.Policies) || len(c.Policies) != users+len(d.Policies) {
		t.Errorf("%d policies (%d calico-pni's), want %d users' and %d calico-pni's", len(c.Policies), managed, users, len(d.Policies))
	}
	for _, ns := range c.Namespaces {
		switch ns.Name {
		case "sandbox":
			if ns.Labels[policies.IsolatedLabel] != "" || ns.Labels["team"] != "qa" {
				t.Errorf("sandbox labels %v", ns.Labels)
			}
		case "shop":
			if ns.Labels[policies.IsolatedLabel] != "true" || ns.Labels[policies.ProjectLabel] != "p-b6jcw" {
				t.Errorf("shop labels %v", ns.Labels)
			}
		}
	}
	if _, _, err := Preview(readArticle(t, false), config.Default(), calico.Version{}); err == nil {
		t.Error("a preview without the snapshot objects succeeded")
	}
}

// TestGeneratedTier: a policy the generator puts in a tier is evaluated
// in that tier.
func TestGeneratedTier(t *testing.T) {
	p := generated(calico.Policy{Name: "pni-x", Spec: calico.GlobalNetworkPolicySpec{Tier: "calico-pni"}})
	if p.TierName() != "calico-pni" || !p.Managed || p.Kind != evaluator.GlobalNetworkPolicy {
		t.Errorf("%+v", p)
	}
	if q := generated(calico.Policy{Name: "pni-y", Namespace: "shop", Spec: calico.GlobalNetworkPolicySpec{Tier: "default"}}); q.Tier != "" || q.Kind != evaluator.NetworkPolicy || q.Namespace != "shop" {
		t.Errorf("%+v", q)
	}
}

// TestNetworkSetsKeepTheNodePortException: Felix puts the addresses of
// every network set into the IP set of a rule selector that selects it
// (felix/labelindex), so a source `notSelector: all()` would exclude every
// address a GlobalNetworkSet, or any tenant's NetworkSet, covers (a GNP's
// rule selector is not limited to a namespace), and an outside client in
// a network set would lose the NodePort exception. calico-pni's exception
// excludes pods by the label Calico gives every Kubernetes workload
// endpoint instead, which network sets never carry. The oracle is
// Calico's behaviour, not the generator: an outside address is let in to
// shop/web on TCP 8080 whether or not a network set covers it, and a pod
// of another project (redis) is not.
func TestNetworkSetsKeepTheNodePortException(t *testing.T) {
	for _, tt := range []struct {
		name, sets string
		want       evaluator.Verdict
	}{
		{"no network set", "", evaluator.Allow},
		{"a GlobalNetworkSet covering the address", "{apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkSet, metadata: {name: partners, labels: {role: partner}}, spec: {nets: [198.51.100.0/24]}}", evaluator.Allow},
		{"a tenant's NetworkSet covering it", "{apiVersion: crd.projectcalico.org/v1, kind: NetworkSet, metadata: {name: mine, namespace: redis}, spec: {nets: [198.51.100.7/32]}}", evaluator.Allow},
		{"a network set elsewhere", "{apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkSet, metadata: {name: other}, spec: {nets: [203.0.113.0/24]}}", evaluator.Allow},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
			if tt.sets != "" {
				if err := r.ReadFile("sets.yaml", []byte(tt.sets)); err != nil {
					t.Fatal(err)
				}
			}
			c, _, err := Preview(r.Finish(), config.Default(), calico.Version{Major: 3, Minor: 28})
			if err != nil {
				t.Fatal(err)
			}
			ix := evaluator.NewIndex(c)
			web, err := ix.PodEndpoint("shop", "web-6f7c9d8b4-xk2lp")
			if err != nil {
				t.Fatal(err)
			}
			res := ix.Evaluate(ix.AddrEndpoint(netip.MustParseAddr("198.51.100.7")), web, "TCP", 8080)
			if res.Verdict != tt.want {
				t.Errorf("198.51.100.7 -> shop/web TCP 8080: %s (%s), want %s", res.Verdict, res.Reason, tt.want)
			}
			redis, err := ix.PodEndpoint("redis", "redis-master-0")
			if err != nil {
				t.Fatal(err)
			}
			if res := ix.Evaluate(redis, web, "TCP", 8080); res.Verdict != evaluator.Deny {
				t.Errorf("redis/redis-master-0 -> shop/web TCP 8080: %s (%s), want %s: the exception admits no pod of another project", res.Verdict, res.Reason, evaluator.Deny)
			}
		})
	}
}
