package evaluator

import (
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
)

// Small builders for the table tests. Labels are given as "key=value".

func labels(kv ...string) map[string]string {
	out := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		out[k] = v
	}
	return out
}

func namespace(name string, kv ...string) Namespace {
	return Namespace{Name: name, Labels: labels(kv...)}
}

func addrs(ips ...string) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		out = append(out, netip.MustParseAddr(ip))
	}
	return out
}

// pod is a running pod on node n1 with a service account "default".
func pod(ns, name, ip string, kv ...string) Pod {
	return Pod{Namespace: ns, Name: name, IPs: addrs(ip), Node: "n1", ServiceAccount: "default", Labels: labels(kv...)}
}

// spec reads a policy spec written as YAML, as in a Calico manifest.
func spec(t testing.TB, text string) calico.GlobalNetworkPolicySpec {
	t.Helper()
	var s calico.GlobalNetworkPolicySpec
	if err := yaml.UnmarshalStrict([]byte(text), &s); err != nil {
		t.Fatalf("spec %q: %v", text, err)
	}
	return s
}

func gnp(t testing.TB, name, text string) Policy {
	return Policy{Kind: GlobalNetworkPolicy, Name: name, Spec: spec(t, text)}
}

func np(t testing.TB, ns, name, text string) Policy {
	return Policy{Kind: NetworkPolicy, Namespace: ns, Name: name, Spec: spec(t, text)}
}

// world is the cluster most tests start from: namespaces shop (project
// a) and db (project b), a pod in each, and service accounts.
func world(policies ...Policy) *Cluster {
	return &Cluster{
		Namespaces: []Namespace{
			namespace("shop", "project=a", "team=web"),
			namespace("db", "project=b"),
			namespace("empty", "project=a"),
		},
		Pods: []Pod{
			pod("shop", "web", "10.42.1.10", "app=web"),
			pod("db", "pg", "10.42.2.10", "app=pg"),
		},
		ServiceAccounts: []ServiceAccount{
			{Namespace: "shop", Name: "default", Labels: labels("tier=frontend")},
			{Namespace: "db", Name: "default"},
		},
		Nodes: []Node{
			{Name: "n1", Addresses: addrs("10.0.0.1"), HostAddresses: addrs("10.0.0.1", "10.42.0.1")},
			{Name: "n2", Addresses: addrs("10.0.0.2"), HostAddresses: addrs("10.0.0.2", "10.42.9.1")},
		},
		Policies: policies,
	}
}

func endpoint(t testing.TB, ix *Index, name string) *Endpoint {
	t.Helper()
	if a, err := netip.ParseAddr(name); err == nil {
		return ix.AddrEndpoint(a)
	}
	ns, pod, _ := strings.Cut(name, "/")
	ep, err := ix.PodEndpoint(ns, pod)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// check evaluates src -> dst on TCP port and compares the verdict.
func check(t *testing.T, ix *Index, src, dst string, port uint16, want Verdict) Result {
	t.Helper()
	r := ix.Evaluate(endpoint(t, ix, src), endpoint(t, ix, dst), "TCP", port)
	if r.Verdict != want {
		t.Errorf("%s -> %s TCP %d: %s (%s), want %s\negress: %s\ningress: %s", src, dst, port, r.Verdict, r.Reason, want, r.Egress.Reason, r.Ingress.Reason)
	}
	return r
}

func order(f float64) *float64 { return &f }
