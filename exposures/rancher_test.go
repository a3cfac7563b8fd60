package exposures

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/rancherisolation"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// articleNamespaces are the article's namespaces as calico-pni's statuses
// place them (README.md, "Status of a namespace"): intruder in p-mcb29 by
// its annotation, squatter isolated on its own (its label is not
// believed), legacy opted out, sandbox open, the System project exempt.
var articleNamespaces = []Namespace{
	{Name: "kube-system", Project: "p-7xq2n"}, {Name: "cattle-system", Project: "p-7xq2n"},
	{Name: "cattle-monitoring-system", Project: "p-7xq2n"}, {Name: "calico-system", Project: "p-7xq2n"},
	{Name: "ingress-nginx", Project: "p-mcb29", Isolated: true}, {Name: "redis", Project: "p-mcb29", Isolated: true},
	{Name: "intruder", Project: "p-mcb29", Isolated: true},
	{Name: "default", Project: "p-b6jcw", Isolated: true}, {Name: "shop", Project: "p-b6jcw", Isolated: true},
	{Name: "shop-batch", Project: "p-b6jcw", Isolated: true}, {Name: "payments", Project: "p-b6jcw", Isolated: true},
	{Name: "legacy", Project: "p-b6jcw"},
	{Name: "sandbox"}, {Name: "squatter", Isolated: true},
}

// rancherArticle returns Rancher's policies for the article's cluster, in
// Calico's form, the namespaces with their labels, and the nodes'
// host-network addresses calico-pni admits. clean drops the forged
// project labels of intruder and squatter first.
func rancherArticle(t *testing.T, clean bool) ([]*evaluator.Policy, []Namespace, []netip.Addr) {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "testdata", "article-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testbed.DecodeObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rancherisolation.FromObjects(objs, "p-7xq2n", true)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]string{}
	for i := range c.Namespaces {
		ns := &c.Namespaces[i]
		if clean && (ns.Name == "intruder" || ns.Name == "squatter") {
			delete(ns.Labels, "field.cattle.io/projectId")
			if ns.Name == "intruder" {
				ns.Labels["field.cattle.io/projectId"] = "p-mcb29"
			}
		}
		labels[ns.Name] = ns.Labels
	}
	res, err := rancherisolation.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	var out []*evaluator.Policy
	for i := range res.Policies {
		p, _ := evaluator.FromKubernetes(&res.Policies[i])
		out = append(out, &p)
	}
	nss := make([]Namespace, len(articleNamespaces))
	for i, ns := range articleNamespaces {
		ns.Labels = labels[ns.Name]
		nss[i] = ns
	}
	var hosts []netip.Addr
	for i := range c.Nodes {
		hosts = append(hosts, policies.NodeFrom(&c.Nodes[i]).HostAddresses...)
	}
	return out, nss, hosts
}

const (
	nodePortNote = " (Rancher's NodePort/LoadBalancer exception (np-<service>) admits any source, pods of other projects included (rancher#49430); calico-pni's externalServices admits addresses outside the cluster only)"
	hostPortNote = " (Rancher's host-port exception (hp-<pod>) admits any source, pods of other projects included (rancher#49430); calico-pni's hostPorts admits addresses outside the cluster only)"
	labelNote    = " (Rancher's project isolation (np-default) admits every namespace labelled field.cattle.io/projectId with the project, a label Rancher does not guard; calico-pni reads the guarded annotation)"
)

func knpExposure(ns, name, opens string) Exposure {
	return Exposure{Kind: "NetworkPolicy", Namespace: ns, Name: name, Direction: "ingress", Opens: opens}
}

// TestFindRancherIsolation: beside calico-pni's walls in default-tier
// mode, Rancher's np-<service> and hp-<pod> open them to any source, and
// say why; np-default and hn-nodes open nothing when every namespace's
// project label is true and calico-pni admits the nodes' addresses.
func TestFindRancherIsolation(t *testing.T) {
	pols, nss, hosts := rancherArticle(t, true)
	got := Find(Input{Namespaces: nss, SystemProject: "p-7xq2n", Policies: pols, WallTier: "default", HostAddresses: hosts})
	want := map[string][]Exposure{
		"shop": {knpExposure("shop", "np-web", "from anywhere"+nodePortNote)},
		"ingress-nginx": {
			knpExposure("ingress-nginx", "hp-ingress-nginx-controller-5d8f7c-x2x9p", "from anywhere"+hostPortNote),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exposures:\n got %+v\nwant %+v", got, want)
	}

	// In tier mode Rancher's policies, in the default tier, come after
	// the walls and open nothing.
	if got := Find(Input{Namespaces: nss, SystemProject: "p-7xq2n", Policies: pols, WallTier: "calico-pni",
		TierOrders: map[string]*float64{"default": order(1_000_000), "calico-pni": order(10_000)}, HostAddresses: hosts}); len(got) != 0 {
		t.Errorf("tier mode: %+v", got)
	}

	// Without calico-pni's host-network exception (hostNetwork.enabled:
	// false), hn-nodes opens the walls to the nodes' addresses: one
	// exposure per address, as Calico makes one rule of each peer.
	got = Find(Input{Namespaces: nss, SystemProject: "p-7xq2n", Policies: pols, WallTier: "default"})
	opened := map[string]int{}
	for ns, list := range got {
		for _, e := range list {
			if e.Name != "hn-nodes" {
				continue
			}
			opened[ns]++
			if !strings.HasPrefix(e.Opens, "from addresses 10.42.") || !strings.HasSuffix(e.Opens, "/32 (Rancher's project isolation (hn-nodes) admits these addresses, and calico-pni's host-network exception does not)") {
				t.Errorf("%s: %+v", ns, e)
			}
		}
	}
	for _, ns := range []string{"ingress-nginx", "redis", "intruder", "default", "shop", "shop-batch", "payments"} {
		if opened[ns] != 4 {
			t.Errorf("%s: hn-nodes opens %d addresses, want the 4 nodes' (all: %v)", ns, opened[ns], opened)
		}
	}
	if len(opened) != 7 {
		t.Errorf("hn-nodes opens %d namespaces, want the 7 isolated ones with a project label: %v", len(opened), opened)
	}
}

// TestFindRancherForgedLabel: Rancher places namespaces by their
// unguarded project label, so on the article's cluster, where intruder
// (annotated p-mcb29) and squatter (no annotation) carry p-b6jcw's label,
// np-default opens every p-b6jcw namespace to them, and intruder's and
// squatter's own np-default opens them to p-b6jcw (and squatter to
// intruder, of p-mcb29).
func TestFindRancherForgedLabel(t *testing.T) {
	pols, nss, hosts := rancherArticle(t, false)
	got := Find(Input{Namespaces: nss, SystemProject: "p-7xq2n", Policies: pols, WallTier: "default", HostAddresses: hosts})
	toProject := knpExposure("", "np-default", "from namespaces of other projects (p-mcb29) and 1 namespaces in no project"+labelNote)
	for _, ns := range []string{"default", "shop", "shop-batch", "payments"} {
		e := toProject
		e.Namespace = ns
		found := false
		for _, x := range got[ns] {
			found = found || x == e
		}
		if !found {
			t.Errorf("%s: %+v lacks %+v", ns, got[ns], e)
		}
	}
	if want := []Exposure{knpExposure("intruder", "np-default", "from namespaces of other projects (p-b6jcw) and 1 namespaces in no project"+labelNote)}; !reflect.DeepEqual(got["intruder"], want) {
		t.Errorf("intruder: %+v, want %+v", got["intruder"], want)
	}
	if want := []Exposure{knpExposure("squatter", "np-default", "from namespaces of other projects (p-b6jcw, p-mcb29)"+labelNote)}; !reflect.DeepEqual(got["squatter"], want) {
		t.Errorf("squatter: %+v, want %+v", got["squatter"], want)
	}
	// The legacy namespace carries the label too, but is not isolated.
	if _, ok := got["legacy"]; ok {
		t.Errorf("legacy, not isolated, has exposures: %+v", got["legacy"])
	}
}

// TestFindHostAddresses: a rule that admits only addresses calico-pni
// admits itself opens nothing, whoever wrote it; another address, a
// range, or egress to them, still does. Calico makes one rule of each
// peer of a Kubernetes NetworkPolicy, so each address is judged alone.
func TestFindHostAddresses(t *testing.T) {
	hosts := []netip.Addr{netip.MustParseAddr("10.42.0.1"), netip.MustParseAddr("10.0.0.11")}
	tests := []struct {
		name   string
		policy *evaluator.Policy
		opens  string
	}{
		{"the nodes' addresses", knp("shop", ingressFrom(ipBlock("10.42.0.1/32"), ipBlock("10.0.0.11/32"))), ""},
		{"another address beside them", knp("shop", ingressFrom(ipBlock("10.42.0.1/32"), ipBlock("10.42.9.9/32"))), "from addresses 10.42.9.9/32"},
		{"a range around a node", knp("shop", ingressFrom(ipBlock("10.42.0.0/24"))), "from addresses 10.42.0.0/24"},
	}
	for _, tt := range tests {
		got := Find(Input{Namespaces: namespaces, SystemProject: "p-sys", Policies: []*evaluator.Policy{tt.policy}, HostAddresses: hosts})
		opens := ""
		for _, e := range got["shop"] {
			opens = e.Opens
		}
		if opens != tt.opens {
			t.Errorf("%s: %+v, want opens %q", tt.name, got, tt.opens)
		}
	}
	egress := knp("pay", egressSpec(ipBlock("10.42.0.1/32")))
	if got := Find(Input{Namespaces: namespaces, SystemProject: "p-sys", Policies: []*evaluator.Policy{egress}, HostAddresses: hosts}); !strings.Contains(got["pay"][0].Opens, "to addresses 10.42.0.1/32") {
		t.Errorf("egress to a node: %+v", got)
	}
}

func ipBlock(cidr string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}
}

func egressSpec(peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicySpec {
	return networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: peers}}}
}
