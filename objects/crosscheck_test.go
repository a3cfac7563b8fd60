package objects

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
)

// The article fixture as its authors meant it, stated here and not
// computed by calico-pni: which project each namespace is in, which are
// isolated, and the labels that open exceptions.
var (
	projectOf = map[string]string{
		"kube-system": "system", "cattle-system": "system", "cattle-monitoring-system": "system", "calico-system": "system",
		"ingress-nginx": "p-mcb29", "redis": "p-mcb29", "intruder": "p-mcb29",
		"default": "p-b6jcw", "shop": "p-b6jcw", "shop-batch": "p-b6jcw", "payments": "p-b6jcw", "legacy": "p-b6jcw",
		// sandbox is in no project; squatter claims one without Rancher's
		// annotation and is isolated on its own.
		"sandbox": "", "squatter": "",
	}
	isolated      = []string{"ingress-nginx", "redis", "intruder", "default", "shop", "shop-batch", "payments", "squatter"}
	consumesRedis = []string{"shop"}
	offersRedis   = []string{"redis"}
	controllers   = []string{"ingress-nginx"}
	backends      = []string{"shop"}
	internet      = []string{"payments"}
	nodeAddresses = []string{"10.0.0.11", "10.0.0.21", "10.0.0.22", "10.0.1.5", "203.0.113.21"}
)

const (
	apiServer = "10.0.0.11" // the endpoint of default/kubernetes, on cp-1
	outside   = "198.51.100.7"
	website   = "93.184.216.34"
)

// peer is one end of a connection in the cross-check.
type peer struct {
	name string // NAMESPACE/POD or an address
	ns   string
	host bool // host network or a node address
}

// intended says whether calico-pni's policies are meant to allow a
// connection, from the rules of docs/policies.md: the same project is
// allowed, other projects are denied; the System project gets in; DNS and
// the API server are reachable; and the exceptions: the ingress controller
// to backends on 80 and 443, the redis role on 6379, monitoring (in the
// System project), the internet label, the host network, NodePort and host
// ports from outside.
func intended(src, dst peer, protocol string, port int) bool {
	return egressIntended(src, dst, protocol, port) && ingressIntended(src, dst, protocol, port)
}

func egressIntended(src, dst peer, protocol string, port int) bool {
	if src.ns == "" || src.host || !slices.Contains(isolated, src.ns) {
		return true // no egress side, or not isolated
	}
	tcp := protocol == "TCP"
	switch {
	case dst.ns != "" && !dst.host && sameProject(src.ns, dst.ns):
		return true
	case strings.HasPrefix(dst.name, "kube-system/coredns-") && port == 53:
		return true
	case slices.Contains(nodeAddresses, address(dst)) && tcp && port == 6443:
		return true
	case slices.Contains(consumesRedis, src.ns) && slices.Contains(offersRedis, dst.ns) && tcp && port == 6379:
		return true
	case slices.Contains(controllers, src.ns) && slices.Contains(backends, dst.ns) && tcp && (port == 80 || port == 443):
		return true
	case dst.ns == "" && !dst.host && slices.Contains(internet, src.ns):
		return true
	}
	return false
}

func ingressIntended(src, dst peer, protocol string, port int) bool {
	if dst.ns == "" || dst.host || !slices.Contains(isolated, dst.ns) {
		return true
	}
	tcp := protocol == "TCP"
	switch {
	case src.host:
		return true // pni-allow-from-host-network, or the same node
	case src.ns == "":
		// From outside: the NodePort Service web (target port 8080) and
		// the ingress controller's host ports.
		return tcp && (strings.HasPrefix(dst.name, "shop/web-") && port == 8080 ||
			strings.HasPrefix(dst.name, "ingress-nginx/") && (port == 80 || port == 443))
	case sameProject(src.ns, dst.ns), projectOf[src.ns] == "system":
		return true
	case slices.Contains(consumesRedis, src.ns) && slices.Contains(offersRedis, dst.ns) && tcp && port == 6379:
		return true
	case slices.Contains(controllers, src.ns) && slices.Contains(backends, dst.ns) && tcp && (port == 80 || port == 443):
		return true
	}
	return false
}

func sameProject(a, b string) bool {
	if projectOf[a] == "" || projectOf[b] == "" {
		return a == b
	}
	return projectOf[a] == projectOf[b]
}

func address(p peer) string {
	if _, err := netip.ParseAddr(p.name); err == nil {
		return p.name
	}
	if p.name == "kube-system/kube-proxy-worker-1" {
		return "10.0.0.21"
	}
	return ""
}

// TestGeneratorAndEvaluatorAgree evaluates every pair of the fixture's
// pods, and each pod with the API server, a node and addresses outside
// the cluster, under the policies `calico-pni render` computes for the
// fixture, and checks each verdict against intended. The users' own
// policies are left out: this judges calico-pni's walls alone. Generator
// and evaluator check each other: a wrong policy or a wrong evaluation
// both show up as a difference.
func TestGeneratorAndEvaluatorAgree(t *testing.T) {
	set := readArticle(t, true)
	set.Cluster.Policies = nil
	cluster, d, err := Preview(set, config.Default(), calico.Version{Major: 3, Minor: 28})
	if err != nil || len(d.Invalid) > 0 {
		t.Fatalf("preview: %v %v", err, d.Invalid)
	}
	ix := evaluator.NewIndex(cluster)

	var peers []peer
	for _, p := range cluster.Pods {
		if p.Node == "" {
			continue // not scheduled: no network
		}
		peers = append(peers, peer{name: p.Namespace + "/" + p.Name, ns: p.Namespace, host: p.HostNetwork})
	}
	addresses := []peer{{name: apiServer, host: true}, {name: "10.0.0.22", host: true}, {name: outside}, {name: website}}
	ports := []struct {
		protocol string
		port     int
	}{{"UDP", 53}, {"TCP", 53}, {"TCP", 80}, {"TCP", 443}, {"TCP", 5432}, {"TCP", 6379}, {"TCP", 6443}, {"TCP", 8080}, {"TCP", 9999}}

	endpoint := func(p peer) *evaluator.Endpoint {
		if a, err := netip.ParseAddr(p.name); err == nil {
			return ix.AddrEndpoint(a)
		}
		ns, name, _ := strings.Cut(p.name, "/")
		ep, err := ix.PodEndpoint(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	checked, allowed := 0, 0
	try := func(src, dst peer) {
		for _, pp := range ports {
			r := ix.Evaluate(endpoint(src), endpoint(dst), pp.protocol, uint16(pp.port))
			want := evaluator.Deny
			if intended(src, dst, pp.protocol, pp.port) {
				want = evaluator.Allow
				allowed++
			}
			checked++
			if r.Verdict != want {
				t.Errorf("%s -> %s %s %d: %s, intended %s\n  %s", src.name, dst.name, pp.protocol, pp.port, r.Verdict, want, r.Reason)
			}
		}
	}
	for _, src := range peers {
		for _, dst := range peers {
			if src != dst {
				try(src, dst)
			}
		}
		for _, a := range addresses {
			try(src, a)
			try(a, src)
		}
	}
	t.Logf("%d connections checked, %d of them intended to be allowed", checked, allowed)
	if checked < 2000 || allowed == 0 || allowed == checked {
		t.Errorf("the cross-check covered %d connections, %d allowed: the fixture lost its pods", checked, allowed)
	}
}
