package rancherisolation

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/rancher"
)

var update = flag.Bool("update", false, "rewrite testdata/article-rancher-isolation.yaml")

func decode(t *testing.T, text string) Cluster {
	t.Helper()
	objs, err := testbed.DecodeObjects([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromObjects(objs, "p-sys", true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// asYAML prints policies as the API would hold them, for comparing with
// what a test expects.
func asYAML(t *testing.T, r Result, namespace, name string) string {
	t.Helper()
	for i := range r.Policies {
		if p := &r.Policies[i]; p.Namespace == namespace && p.Name == name {
			obj, err := policyObject(p)
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	return ""
}

func names(r Result) []string {
	var out []string
	for _, p := range r.Policies {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// The cluster of TestBuild: the System project p-sys (kube-system, with
// a policy of its users, and cattle-system), project p-a (a, with a
// NodePort Service and a pod with host ports; b, labelled for p-a
// without Rancher's annotation), and open (no project).
const cluster = `
- {apiVersion: v1, kind: Namespace, metadata: {name: kube-system, uid: u-ks, labels: {field.cattle.io/projectId: p-sys}, annotations: {field.cattle.io/projectId: "c-1:p-sys"}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: cattle-system, uid: u-cs, labels: {field.cattle.io/projectId: p-sys}, annotations: {field.cattle.io/projectId: "c-1:p-sys"}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: a, uid: u-a, labels: {field.cattle.io/projectId: p-a}, annotations: {field.cattle.io/projectId: "c-1:p-a"}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: b, uid: u-b, labels: {field.cattle.io/projectId: p-a}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: open, uid: u-o}}
- {apiVersion: v1, kind: Node, metadata: {name: n2, annotations: {projectcalico.org/IPv4VXLANTunnelAddr: 10.42.2.0}}, spec: {podCIDR: 10.42.2.0/24}}
- {apiVersion: v1, kind: Node, metadata: {name: n1, annotations: {projectcalico.org/IPv4IPIPTunnelAddr: 10.42.1.1, projectcalico.org/IPv4VXLANTunnelAddr: 10.42.1.0}}, spec: {podCIDR: 10.42.1.0/24}}
- {apiVersion: v1, kind: Node, metadata: {name: n3, annotations: {projectcalico.org/IPv4IPIPTunnelAddr: ""}}, spec: {podCIDR: 10.42.3.0/24}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: mine, namespace: kube-system}, spec: {podSelector: {}}}
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: a, uid: u-web}, spec: {type: NodePort, selector: {app: web}, ports: [{name: h, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}, {name: d, port: 53, protocol: UDP, nodePort: 30053}]}}
- {apiVersion: v1, kind: Service, metadata: {name: lb, namespace: a}, spec: {type: LoadBalancer, allocateLoadBalancerNodePorts: false, selector: {app: lb}, ports: [{port: 443}]}}
- {apiVersion: v1, kind: Service, metadata: {name: inner, namespace: a}, spec: {selector: {app: inner}, ports: [{port: 80}]}}
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: b}, spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, nodePort: 30081}]}}
- {apiVersion: v1, kind: Service, metadata: {name: dns, namespace: cattle-system}, spec: {type: NodePort, ports: [{port: 53, nodePort: 30053}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: lb-0, namespace: a, uid: u-lb, labels: {app: lb}}, spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 80}, {containerPort: 443, hostPort: 8443}, {containerPort: 9000}]}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: init-0, namespace: a}, spec: {initContainers: [{name: i, image: i, ports: [{containerPort: 80, hostPort: 80}]}], containers: [{name: c, image: i}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: hp-0, namespace: b}, spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 80}]}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: agent, namespace: cattle-system, labels: {app: agent}}, spec: {containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 80}]}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: bare, namespace: cattle-system}, spec: {containers: [{name: c, image: i, ports: [{containerPort: 81, hostPort: 81}]}]}}
`

// TestBuild checks what Rancher writes against its source, rule by rule;
// the expected objects are written from rancher/rancher's
// pkg/controllers/managementuser/networkpolicy/, not from Build.
func TestBuild(t *testing.T) {
	r, err := Build(decode(t, "apiVersion: v1\nkind: List\nitems:"+cluster))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// nssyncer.go, netpol.go programNetworkPolicy: np-default in
		// every namespace with a project label, b included (Rancher reads
		// the label); np-default-allow-all only in the System namespace
		// without a policy of its users; nothing for open.
		"a/hn-nodes", "a/hp-lb-0", "a/np-default", "a/np-web",
		"b/hn-nodes", "b/np-default",
		"cattle-system/np-default-allow-all",
	}
	if got := names(r); !slices.Equal(got, want) {
		t.Errorf("policies %v\nwant %v", got, want)
	}
	// generateDefaultNamespaceNetworkPolicy.
	if got, want := asYAML(t, r, "a", "np-default"), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    cattle.io/creator: norman
    field.cattle.io/projectId: p-a
  name: np-default
  namespace: a
spec:
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          field.cattle.io/projectId: p-a
    - namespaceSelector:
        matchLabels:
          field.cattle.io/projectId: p-sys
  podSelector: {}
  policyTypes:
  - Ingress
`; got != want {
		t.Errorf("np-default:\n%s\nwant\n%s", got, want)
	}
	// generateAllowAllNetworkPolicy.
	if got, want := asYAML(t, r, "cattle-system", "np-default-allow-all"), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    cattle.io/creator: norman
    field.cattle.io/projectId: p-sys
  name: np-default-allow-all
  namespace: cattle-system
spec:
  egress:
  - {}
  ingress:
  - {}
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
`; got != want {
		t.Errorf("np-default-allow-all:\n%s\nwant\n%s", got, want)
	}
	// handleHostNetwork with Calico: n1's IPIP address (before its VXLAN
	// one), n2's VXLAN address, n3 skipped (its IPIP annotation is there
	// but empty); sorted as text; owned by the namespace.
	if got, want := asYAML(t, r, "a", "hn-nodes"), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    cattle.io/creator: norman
  name: hn-nodes
  namespace: a
  ownerReferences:
  - apiVersion: v1
    kind: Namespace
    name: a
    uid: u-a
spec:
  ingress:
  - from:
    - ipBlock:
        cidr: 10.42.1.1/32
    - ipBlock:
        cidr: 10.42.2.0/32
  podSelector: {}
  policyTypes:
  - Ingress
`; got != want {
		t.Errorf("hn-nodes:\n%s\nwant\n%s", got, want)
	}
	// generateServiceNetworkPolicy: target ports of the ports with a
	// node port, sorted as text ("53/..." before "8080/..."), no
	// policyTypes; lb allocates no node ports, inner is ClusterIP, b has
	// no annotation, cattle-system is the System project.
	if got, want := asYAML(t, r, "a", "np-web"), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    cattle.io/creator: norman
  name: np-web
  namespace: a
  ownerReferences:
  - apiVersion: v1
    kind: Service
    name: web
    uid: u-web
spec:
  ingress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 8080
      protocol: TCP
  podSelector:
    matchLabels:
      app: web
`; got != want {
		t.Errorf("np-web:\n%s\nwant\n%s", got, want)
	}
	// generatePodNetworkPolicy: the container ports of host ports, "443"
	// before "80"; the pod selected by Rancher's podName label.
	if got, want := asYAML(t, r, "a", "hp-lb-0"), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    cattle.io/creator: norman
  name: hp-lb-0
  namespace: a
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: lb-0
    uid: u-lb
spec:
  ingress:
  - ports:
    - port: 443
      protocol: TCP
    - port: 80
      protocol: TCP
  podSelector:
    matchLabels:
      field.cattle.io/podName: lb-0
`; got != want {
		t.Errorf("hp-lb-0:\n%s\nwant\n%s", got, want)
	}
	// addLabelIfHostPortsPresent: lb-0 is labelled; init-0's host port
	// is in an init container; hp-0's namespace has no annotation; agent
	// is a System-project pod with labels; bare is one without any, and
	// gets the label but no policy.
	wantLabels := map[string]map[string]string{
		"a/lb-0":             {rancher.PodNameLabel: "lb-0"},
		"cattle-system/bare": {rancher.PodNameLabel: "bare"},
	}
	if len(r.PodLabels) != len(wantLabels) || r.PodLabels["a/lb-0"][rancher.PodNameLabel] != "lb-0" || r.PodLabels["cattle-system/bare"][rancher.PodNameLabel] != "bare" {
		t.Errorf("pod labels %v, want %v", r.PodLabels, wantLabels)
	}
}

// TestBuildHostNetworkWithoutCalico: when Rancher does not know the CNI
// is Calico, hn-nodes holds the first address of each pod CIDR; a node
// without one is skipped, and without any address there is no hn-nodes
// at all (its empty from would admit everything, rancher#14085).
func TestBuildHostNetworkWithoutCalico(t *testing.T) {
	c := decode(t, "apiVersion: v1\nkind: List\nitems:"+cluster)
	c.CalicoCNI = false
	r, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := asYAML(t, r, "a", "hn-nodes"); !bytes.Contains([]byte(got), []byte("cidr: 10.42.1.0/32\n    - ipBlock:\n        cidr: 10.42.2.0/32\n    - ipBlock:\n        cidr: 10.42.3.0/32\n")) {
		t.Errorf("hn-nodes without Calico:\n%s", got)
	}
	for i := range c.Nodes {
		c.Nodes[i].Spec.PodCIDR = ""
	}
	if r, err = Build(c); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names(r), "a/hn-nodes") {
		t.Error("hn-nodes written without a single node address")
	}
	c.Nodes[0].Spec.PodCIDR = "10.42.0.0/33"
	if _, err := Build(c); err == nil {
		t.Error("a node's invalid pod CIDR was accepted")
	}
	if _, err := Build(Cluster{}); err == nil {
		t.Error("built without a System project")
	}
}

// TestBuildClassified: every policy Build writes is one ClassifyPolicy
// recognises, in the role its name says.
func TestBuildClassified(t *testing.T) {
	r, err := Build(decode(t, "apiVersion: v1\nkind: List\nitems:"+cluster))
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		got, ok := rancher.ClassifyPolicy(p)
		if !ok || got.Role == "" || got.Role != rancher.RoleByName(p.Name, p.Labels) {
			t.Errorf("%s/%s classified %+v", p.Namespace, p.Name, got)
		}
	}
}

// TestArticleFixture keeps testdata/article-rancher-isolation.yaml what
// Fixture makes of the article's files.
func TestArticleFixture(t *testing.T) {
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, name := range []string{"article-cluster.yaml", "article-workloads.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
	}
	got, err := Fixture(files, "p-7xq2n", true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "testdata", "article-rancher-isolation.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the article's files make; run `go test ./internal/rancherisolation -run TestArticleFixture -update` and review the diff", path)
	}
}
