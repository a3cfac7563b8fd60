package objects

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
)

// articleFiles are the fixture shared by the tests, the demo and the
// benchmarks, and the workloads the evaluator's tests add to it.
var articleFiles = []string{
	filepath.Join("..", "testdata", "article-cluster.yaml"),
	filepath.Join("..", "testdata", "article-workloads.yaml"),
}

func readArticle(t testing.TB, keep bool) *Set {
	t.Helper()
	r := NewReader()
	r.KeepSnapshot = keep
	for _, path := range articleFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ReadFile(path, data); err != nil {
			t.Fatal(err)
		}
	}
	return r.Finish()
}

func read(t *testing.T, text string) (*Set, error) {
	t.Helper()
	r := NewReader()
	if err := r.ReadFile("in.yaml", []byte(text)); err != nil {
		return nil, err
	}
	return r.Finish(), nil
}

func TestReadArticle(t *testing.T) {
	s := readArticle(t, false)
	c := s.Cluster
	if len(c.Namespaces) != 14 || len(c.Pods) != 16 || len(c.Nodes) != 4 || len(c.ServiceAccounts) != 14 || len(c.Services) != 4 {
		t.Errorf("read %d namespaces, %d pods, %d nodes, %d service accounts, %d services", len(c.Namespaces), len(c.Pods), len(c.Nodes), len(c.ServiceAccounts), len(c.Services))
	}
	if len(c.Policies) != 5 || c.EndpointToHostAction != "Accept" {
		t.Errorf("policies %d, endpoint to host %q", len(c.Policies), c.EndpointToHostAction)
	}
	var guard evaluator.Policy
	for _, p := range c.Policies {
		if p.Name == "db-guard" {
			guard = p
		}
	}
	if guard.Kind != evaluator.NetworkPolicy || guard.Name != "db-guard" || guard.TierName() != "default" || guard.Managed {
		t.Errorf("the Calico policy read as %+v", guard)
	}
	for _, p := range c.Pods {
		if p.Name == "db-0" && (len(p.IPs) != 1 || p.IPs[0].String() != "10.42.2.11" || len(p.Ports) != 1 || p.Ports[0].Name != "postgres") {
			t.Errorf("db-0 read as %+v", p)
		}
	}
}

// TestCalicoNames follows Calico's naming: up to 3.31 a default-tier policy
// is stored as default.<name> in the v1 CRDs; from 3.29 to 3.31 a policy of
// tier t is named t.<name>, and Felix takes the tier from that prefix;
// spec.tier says the tier when set. Calico's v3 API defaults types
// (TestDefaultsOnRead has the whole table).
func TestCalicoNames(t *testing.T) {
	s, err := read(t, `
apiVersion: v1
kind: List
items:
- {apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkPolicy, metadata: {name: default.a}, spec: {selector: all()}}
- {apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkPolicy, metadata: {name: security.b}, spec: {selector: all()}}
- {apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: c}, spec: {tier: platform, egress: [{action: Allow}]}}
- {apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: d, namespace: x, labels: {app.kubernetes.io/managed-by: calico-pni}}, spec: {}}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "default", "security.b": "security", "c": "platform", "d": "default"}
	for _, p := range s.Cluster.Policies {
		if want[p.Name] != p.TierName() {
			t.Errorf("%s: tier %q, want %q", p.Name, p.TierName(), want[p.Name])
		}
		switch p.Name {
		case "a":
			if len(p.Spec.Types) != 0 {
				t.Errorf("v1 types were defaulted: %v", p.Spec.Types)
			}
		case "c":
			// Egress rules and no ingress rules: Calico's defaulting gives
			// [Egress] alone (api/pkg/defaults/networkpolicy.go), not
			// [Ingress, Egress], which would put a default deny on the
			// ingress of every pod the policy selects.
			if len(p.Spec.Types) != 1 || p.Spec.Types[0] != calico.Egress {
				t.Errorf("v3 types with egress rules only: %v, want [Egress]", p.Spec.Types)
			}
		case "d":
			if len(p.Spec.Types) != 1 || !p.Managed {
				t.Errorf("v3 namespaced policy: types %v managed %v", p.Spec.Types, p.Managed)
			}
		}
	}
	if len(s.Cluster.Policies) != 4 {
		t.Errorf("%d policies", len(s.Cluster.Policies))
	}
}

// TestDefaultsOnRead: a file gets exactly the defaults the API servers
// would have applied. Calico's v3 API (api/pkg/defaults/networkpolicy.go,
// from 3.32 api/admission/networkpolicy.mutatingadmissionpolicy.yaml) sets
// types from the rules: [Ingress] with ingress rules or none, [Egress] with
// egress rules only, both with both. A crd.projectcalico.org/v1 object
// gets no defaulting (Felix applies it both ways). The Kubernetes API
// server sets policyTypes to [Ingress], plus Egress when there are egress
// rules (pkg/apis/networking/v1/defaults.go, SetDefaults_NetworkPolicy).
func TestDefaultsOnRead(t *testing.T) {
	tests := []struct {
		name, object string
		want         []calico.PolicyType
	}{
		{"v3 GlobalNetworkPolicy, no rules", `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {selector: all()}}`, []calico.PolicyType{calico.Ingress}},
		{"v3 GlobalNetworkPolicy, ingress rules", `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {ingress: [{action: Allow}]}}`, []calico.PolicyType{calico.Ingress}},
		{"v3 GlobalNetworkPolicy, egress rules", `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {egress: [{action: Allow}]}}`, []calico.PolicyType{calico.Egress}},
		{"v3 NetworkPolicy, egress rules", `{apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: p, namespace: shop}, spec: {egress: [{action: Deny}]}}`, []calico.PolicyType{calico.Egress}},
		{"v3 NetworkPolicy, both", `{apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: p, namespace: shop}, spec: {ingress: [{action: Allow}], egress: [{action: Deny}]}}`, []calico.PolicyType{calico.Ingress, calico.Egress}},
		{"v3 types given", `{apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {types: [Ingress, Egress], egress: [{action: Allow}]}}`, []calico.PolicyType{calico.Ingress, calico.Egress}},
		{"v3 StagedGlobalNetworkPolicy, egress rules", `{apiVersion: projectcalico.org/v3, kind: StagedGlobalNetworkPolicy, metadata: {name: p}, spec: {egress: [{action: Allow}]}}`, []calico.PolicyType{calico.Egress}},
		{"v1 GlobalNetworkPolicy, egress rules: no defaulting", `{apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkPolicy, metadata: {name: default.p}, spec: {egress: [{action: Allow}]}}`, nil},
		{"Kubernetes NetworkPolicy, no rules", `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, namespace: shop}, spec: {podSelector: {}}}`, []calico.PolicyType{calico.Ingress}},
		{"Kubernetes NetworkPolicy, egress rules", `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, namespace: shop}, spec: {podSelector: {}, egress: [{}]}}`, []calico.PolicyType{calico.Ingress, calico.Egress}},
		{"Kubernetes NetworkPolicy, policyTypes given", `{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, namespace: shop}, spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}}`, []calico.PolicyType{calico.Egress}},
	}
	for _, tt := range tests {
		s, err := read(t, tt.object)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		ps := append(s.Cluster.Policies, s.Cluster.Staged...)
		if len(ps) != 1 {
			t.Errorf("%s: read %d policies", tt.name, len(ps))
			continue
		}
		if got := ps[0].Spec.Types; fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: types %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCalicoVersion: the ClusterInformation's version reaches the
// evaluator, which follows it where Felix's releases differ.
func TestCalicoVersion(t *testing.T) {
	s, err := read(t, "{apiVersion: crd.projectcalico.org/v1, kind: ClusterInformation, metadata: {name: default}, spec: {calicoVersion: v3.31.2}}")
	if err != nil {
		t.Fatal(err)
	}
	if s.CalicoVersion != "v3.31.2" || s.Cluster.CalicoVersion != (calico.Version{Major: 3, Minor: 31}) {
		t.Errorf("version %q, cluster %v", s.CalicoVersion, s.Cluster.CalicoVersion)
	}
	s, err = read(t, "{apiVersion: crd.projectcalico.org/v1, kind: ClusterInformation, metadata: {name: default}, spec: {calicoVersion: master}}")
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.CalicoVersion != (calico.Version{}) || !strings.Contains(strings.Join(s.Notes, "\n"), `Calico version "master"`) {
		t.Errorf("an unreadable version: %v, notes %v", s.Cluster.CalicoVersion, s.Notes)
	}
}

// TestDuplicates: with Calico's API server, the same policy is listed by
// projectcalico.org/v3 and stored in crd.projectcalico.org/v1, and every
// Kubernetes NetworkPolicy is listed as a v3 NetworkPolicy named
// knp.default.<name>; each is counted once.
func TestDuplicates(t *testing.T) {
	s, err := read(t, `apiVersion: v1
kind: List
items:
- {apiVersion: crd.projectcalico.org/v1, kind: GlobalNetworkPolicy, metadata: {name: default.same}, spec: {order: 1, types: [Ingress]}}
- {apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: same}, spec: {order: 2, types: [Ingress]}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: web, namespace: shop}, spec: {podSelector: {}}}
- {apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: knp.default.web, namespace: shop}, spec: {order: 1000, selector: all()}}
- {apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: knp.default.only-listed, namespace: shop}, spec: {order: 1000, selector: all(), types: [Ingress]}}
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range s.Cluster.Policies {
		got = append(got, fmt.Sprint(p.Kind, " ", p.Name, " ", *p.Spec.Order))
	}
	want := "GlobalNetworkPolicy same 2, KubernetesNetworkPolicy only-listed 1000, KubernetesNetworkPolicy web 1000"
	if strings.Join(got, ", ") != want {
		t.Errorf("policies: %s\nwant       %s", strings.Join(got, ", "), want)
	}
	if !strings.Contains(strings.Join(s.Notes, "\n"), "both crd.projectcalico.org/v1 and projectcalico.org/v3") {
		t.Errorf("notes %v", s.Notes)
	}
}

// TestStagedAndUnsupported: staged policies are kept apart with their
// action; a StagedKubernetesNetworkPolicy is converted as Calico converts
// the policy it stands for; admin network policies are reported.
func TestStagedAndUnsupported(t *testing.T) {
	s, err := read(t, `apiVersion: v1
kind: List
items:
- {apiVersion: projectcalico.org/v3, kind: StagedGlobalNetworkPolicy, metadata: {name: next}, spec: {selector: all(), types: [Ingress]}}
- {apiVersion: projectcalico.org/v3, kind: StagedNetworkPolicy, metadata: {name: gone, namespace: shop}, spec: {stagedAction: Delete}}
- apiVersion: projectcalico.org/v3
  kind: StagedKubernetesNetworkPolicy
  metadata: {name: web, namespace: shop}
  spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 80}]}]}
- {apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: block}, spec: {priority: 1}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cluster.Policies) != 0 || len(s.Cluster.Staged) != 3 {
		t.Fatalf("policies %d, staged %d", len(s.Cluster.Policies), len(s.Cluster.Staged))
	}
	got := map[string]evaluator.Policy{}
	for _, p := range s.Cluster.Staged {
		got[p.Name] = p
	}
	if got["gone"].StagedAction != evaluator.StagedDelete || got["next"].StagedAction != evaluator.StagedSet {
		t.Errorf("staged actions: %+v", got)
	}
	web := got["web"]
	if web.Kind != evaluator.StagedKubernetesNetworkPolicy || len(web.Spec.Ingress) != 1 || web.Spec.Ingress[0].Destination.Ports[0] != calico.PortNumber(80) || *web.Spec.Order != 1000 {
		t.Errorf("staged Kubernetes policy: %+v", web)
	}
	if len(s.Cluster.Unsupported) != 1 || !strings.Contains(s.Cluster.Unsupported[0], "AdminNetworkPolicy block") {
		t.Errorf("unsupported: %v", s.Cluster.Unsupported)
	}
}

// TestStagedLearnAndIgnore: Calico's enum of staged actions also has Learn
// and Ignore (api/pkg/apis/projectcalico/v3/policy_common.go). Felix never
// reads the staged action: the update processors drop a staged Delete and
// pass every other staged policy on as it is
// (libcalico-go/.../updateprocessors/staged*policyprocessor.go), so a
// Learn or Ignore policy gets pending verdicts exactly as a Set one does.
// Such objects must be read, not fail the whole input.
func TestStagedLearnAndIgnore(t *testing.T) {
	s, err := read(t, `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: shop, labels: {app: web}}
  spec: {nodeName: n1}
  status: {podIP: 10.0.0.1}
- {apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, metadata: {name: guard}, spec: {order: 1, selector: app == 'web', types: [Ingress], ingress: [{action: Deny}]}}
- {apiVersion: projectcalico.org/v3, kind: StagedGlobalNetworkPolicy, metadata: {name: guard}, spec: {stagedAction: Learn, order: 1, selector: app == 'web', types: [Ingress], ingress: [{action: Allow}]}}
- {apiVersion: projectcalico.org/v3, kind: StagedNetworkPolicy, metadata: {name: quiet, namespace: shop}, spec: {stagedAction: Ignore, order: 2, selector: all(), types: [Egress]}}
- apiVersion: projectcalico.org/v3
  kind: StagedKubernetesNetworkPolicy
  metadata: {name: kube, namespace: shop}
  spec: {stagedAction: Learn, podSelector: {}, policyTypes: [Ingress]}
`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]evaluator.StagedAction{}
	for _, p := range s.Cluster.Staged {
		got[p.Name] = p.StagedAction
	}
	want := map[string]evaluator.StagedAction{"guard": evaluator.StagedLearn, "quiet": evaluator.StagedIgnore, "kube": evaluator.StagedLearn}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("staged actions %v, want %v", got, want)
	}
	// Evaluated as if enforced, the Learn policy takes the enforced one's
	// place, as a Set would.
	ix := evaluator.NewIndex(&s.Cluster, evaluator.WithStaged())
	web, err := ix.PodEndpoint("shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	r := ix.Evaluate(ix.AddrEndpoint(netip.MustParseAddr("192.0.2.1")), web, "TCP", 80)
	if r.Ingress.Verdict != evaluator.Allow || r.Ingress.Hits[0].Kind != "StagedGlobalNetworkPolicy" {
		t.Errorf("ingress under the staged Learn policy: %s, hits %+v", r.Ingress.Verdict, r.Ingress.Hits)
	}
}

// TestYAMLScalars: YAML 1.1 (what Kubernetes' YAML decoder reads) takes
// unquoted y, n, yes, no, on, off as booleans and 1.0 as a number, where a
// label value must be a string. The error names the object, the field and
// the fix, instead of "unrecognized type: string", or of labels that
// silently vanish.
func TestYAMLScalars(t *testing.T) {
	tests := []struct{ text, want string }{
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {app: y}}\n",
			`in.yaml: document 1 (Namespace shop): metadata.labels.app: the value is the boolean true, not a string`},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: on}}\n", `quote it (team: "...")`},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {version: 1.0}}\n",
			`(Pod shop/p): metadata.labels.version: the value is the number 1, not a string`},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, annotations: {note: no}}\n",
			`(Pod shop/p): metadata.annotations.note: the value is the boolean false, not a string`},
		{"apiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkSet\nmetadata: {name: ext, labels: {public: yes}}\nspec: {nets: [192.0.2.0/24]}\n",
			`(GlobalNetworkSet ext): metadata.labels.public: the value is the boolean true`},
		{"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec: {podSelector: {matchLabels: {app: on}}}\n",
			`(NetworkPolicy shop/np): spec.podSelector.matchLabels.app: the value is the boolean true, not a string`},
		{"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec: {ingress: [{action: Allow, source: {selector: all()}}, {action: Allow, source: {selector: on}}]}\n",
			`(GlobalNetworkPolicy g): spec.ingress[1].source.selector: the value is the boolean true, not a string`},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec: {containers: [{name: c, ports: [{name: y, containerPort: 80}]}]}\n",
			`(Pod shop/p): spec.containers[0].ports[0].name: the value is the boolean true, not a string`},
	}
	for _, tt := range tests {
		_, err := read(t, tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("reading %q: %v\nwant an error containing %q", tt.text, err, tt.want)
		}
	}
}

// TestReadErrors: bad input gets an error naming the source, the document,
// the object and the field.
func TestReadErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nstatus: {podIP: 10.1.2}\n", "in.yaml: document 1 (Pod shop/p): status.podIP: \"10.1.2\" is not an IP address"},
		{"kind: Pod\nmetadata: {name: p}\n", "in.yaml: document 1: apiVersion and kind must be set"},
		{"apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nstatus: {addresses: [{type: Hostname, address: node1}, {type: InternalIP, address: 10.0.0.300}]}\n", "in.yaml: document 1 (Node node1): status.addresses[1].address: \"10.0.0.300\" is not an IP address"},
		{"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n", "in.yaml: document 1, items[1] (Namespace a): this object appears twice"},
		{"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkPolicy\nmetadata: {name: x}\nspec: {ingress: [{action: Allow, destination: {ports: [70000]}}]}\n", "in.yaml: document 2 (GlobalNetworkPolicy x): spec: port 70000 is out of range"},
		{"apiVersion: crd.projectcalico.org/v1\nkind: Tier\nmetadata: {name: t}\nspec: {defaultAction: Allow}\n", "(Tier t): spec.defaultAction \"Allow\": a tier's default action is Deny or Pass"},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "(Pod p): metadata.namespace must be set"},
		{"apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n", "metadata.name must be set"},
		{"{not yaml", "in.yaml: document 1: not valid YAML or JSON"},
		{"apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: k, namespace: shop}\nspec: {stagedAction: Maybe}\n", "(StagedKubernetesNetworkPolicy shop/k): spec.stagedAction \"Maybe\": Calico's staged actions are Set, Delete, Learn and Ignore"},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\n", "metadata.namespace must be a string, not false (quote it"},
	}
	for _, tt := range tests {
		_, err := read(t, tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("reading %q: %v\nwant an error containing %q", tt.text, err, tt.want)
		}
	}
}
