package policies

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/rancher"
)

const cluster = "c-m4x7q"

// rancherNS is a namespace the way Rancher leaves it: label and annotation.
func rancherNS(name, project string, labels ...string) Namespace {
	ns := Namespace{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}
	if project != "" {
		ns.Labels[rancher.ProjectIDKey] = project
		ns.Annotations[rancher.ProjectIDKey] = cluster + ":" + project
	}
	for i := 0; i+1 < len(labels); i += 2 {
		ns.Labels[labels[i]] = labels[i+1]
	}
	return ns
}

func baseSnapshot(extra ...Namespace) Snapshot {
	return Snapshot{Namespaces: append([]Namespace{
		rancherNS("kube-system", "p-sys00"),
		rancherNS("cattle-system", "p-sys00"),
	}, extra...)}
}

func policyByName(t *testing.T, d Desired, name string) calico.Policy {
	t.Helper()
	for _, p := range d.Policies {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no policy %s among %v", name, policyNames(d))
	return calico.Policy{}
}

func policyNames(d Desired) []string {
	var names []string
	for _, p := range d.Policies {
		names = append(names, p.Name)
	}
	return names
}

func nsState(t *testing.T, d Desired, name string) NamespaceState {
	t.Helper()
	for _, n := range d.Namespaces {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no namespace %s", name)
	return NamespaceState{}
}

func TestNamespaceStates(t *testing.T) {
	cfg := config.Default()
	labelOnly := Namespace{Name: "squatter", Labels: map[string]string{rancher.ProjectIDKey: "p-aaaaa"}}
	d := Generate(baseSnapshot(
		rancherNS("app", "p-aaaaa"),
		rancherNS("monitoring-stack", "p-sys00"),
		rancherNS("cattle-foo", "p-aaaaa"),
		rancherNS("loose", ""),
		labelOnly,
	), cfg)

	tests := []struct {
		ns       string
		state    State
		isolated bool
		labels   map[string]string
		reason   string
	}{
		{"app", Isolated, true, map[string]string{IsolatedLabel: "true", ProjectLabel: "p-aaaaa"}, "in project p-aaaaa"},
		{"kube-system", Exempt, false, map[string]string{ProjectLabel: "p-sys00"}, `"kube-system" in exemptNamespaces`},
		{"monitoring-stack", Exempt, false, map[string]string{ProjectLabel: "p-sys00"}, "in the System project p-sys00 (project of namespace cattle-system)"},
		// Exempt by name wins over project membership, and the namespace
		// still counts as a member of its project for the project's allows.
		{"cattle-foo", Exempt, false, map[string]string{ProjectLabel: "p-aaaaa"}, `"cattle-*"`},
		{"loose", Open, false, map[string]string{}, "in no project"},
		{"squatter", Error, true, map[string]string{IsolatedLabel: "true"}, "cannot be trusted"},
	}
	for _, tt := range tests {
		st := nsState(t, d, tt.ns)
		if st.Status.State != tt.state || st.Status.Isolated != tt.isolated {
			t.Errorf("%s: state %s isolated %v, want %s %v", tt.ns, st.Status.State, st.Status.Isolated, tt.state, tt.isolated)
		}
		if !reflect.DeepEqual(st.Labels, tt.labels) {
			t.Errorf("%s: labels %v, want %v", tt.ns, st.Labels, tt.labels)
		}
		if !strings.Contains(st.Status.Reason, tt.reason) {
			t.Errorf("%s: reason %q does not contain %q", tt.ns, st.Status.Reason, tt.reason)
		}
		if !st.Status.Isolated && (len(st.Status.Policies) > 0 || len(st.Requires) > 0) {
			t.Errorf("%s is not isolated but lists policies %v / requires %v", tt.ns, st.Status.Policies, st.Requires)
		}
	}
	if d.SystemProject != "p-sys00" {
		t.Errorf("SystemProject = %q", d.SystemProject)
	}
}

func TestIsolateUnassigned(t *testing.T) {
	cfg := config.Default()
	cfg.IsolateUnassigned = true
	d := Generate(baseSnapshot(rancherNS("loose", "")), cfg)
	st := nsState(t, d, "loose")
	if st.Status.State != Isolated || st.Labels[IsolatedLabel] != "true" || st.Labels[ProjectLabel] != "" {
		t.Fatalf("loose: %+v", st)
	}
	own := policyByName(t, d, "pni-namespace-loose")
	if own.Spec.NamespaceSelector != "calico-pni.io/isolated == 'true' && projectcalico.org/name == 'loose'" {
		t.Errorf("own policy selects %q", own.Spec.NamespaceSelector)
	}
	if !slices.Contains(st.Requires, "pni-namespace-loose") {
		t.Errorf("loose does not require its own policy: %v", st.Requires)
	}
}

func TestProjectPolicies(t *testing.T) {
	d := Generate(baseSnapshot(
		rancherNS("a1", "p-aaaaa"), rancherNS("a2", "p-aaaaa"), rancherNS("b1", "p-bbbbb"),
		// A project whose only namespace is exempt gets no policy.
		rancherNS("cattle-x", "p-ccccc"),
	), config.Default())
	var projects []string
	for _, n := range policyNames(d) {
		if strings.HasPrefix(n, "pni-project-") {
			projects = append(projects, n)
		}
	}
	if !reflect.DeepEqual(projects, []string{"pni-project-p-aaaaa", "pni-project-p-bbbbb"}) {
		t.Fatalf("project policies %v", projects)
	}
	p := policyByName(t, d, "pni-project-p-aaaaa")
	want := calico.GlobalNetworkPolicySpec{
		Order:             order(AllowOrder),
		NamespaceSelector: "calico-pni.io/isolated == 'true' && calico-pni.io/project == 'p-aaaaa'",
		Types:             []calico.PolicyType{calico.Ingress, calico.Egress},
		Ingress:           []calico.Rule{{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: "calico-pni.io/project == 'p-aaaaa'"}}},
		Egress:            []calico.Rule{{Action: calico.Allow, Destination: calico.EntityRule{NamespaceSelector: "calico-pni.io/project == 'p-aaaaa'"}}},
	}
	if !reflect.DeepEqual(p.Spec, want) {
		t.Errorf("project policy spec\n%+v\nwant\n%+v", p.Spec, want)
	}
	sys := policyByName(t, d, "pni-allow-from-system-project")
	if got := sys.Spec.Ingress[0].Source.NamespaceSelector; got != "calico-pni.io/project == 'p-sys00'" {
		t.Errorf("System project source %q", got)
	}
	if got := nsState(t, d, "a1").Requires; !slices.Contains(got, "pni-project-p-aaaaa") || slices.Contains(got, "pni-project-p-bbbbb") {
		t.Errorf("a1 requires %v", got)
	}
}

// Every policy selects namespaces only through the isolated label, so a
// namespace calico-pni did not isolate (System project, exempt, open) is
// never selected, and a policy never selects host endpoints.
func TestEveryPolicySelectsOnlyIsolatedNamespaces(t *testing.T) {
	cfg := config.Default()
	cfg.IsolateUnassigned = true
	d := Generate(articleSnapshot(t), cfg)
	for _, p := range d.Policies {
		sel, err := calico.ParseSelector(p.Spec.NamespaceSelector)
		if err != nil || p.Spec.NamespaceSelector == "" {
			t.Fatalf("%s: namespaceSelector %q: %v", p.Name, p.Spec.NamespaceSelector, err)
		}
		for _, ns := range d.Namespaces {
			labels := map[string]string{calico.NameLabel: ns.Name}
			for k, v := range ns.Labels {
				labels[k] = v
			}
			labels[IsolatedLabel] = "" // as if the label were absent
			delete(labels, IsolatedLabel)
			if sel.Matches(labels) {
				t.Errorf("%s selects namespace %s without the isolated label", p.Name, ns.Name)
			}
		}
	}
}

func TestDNS(t *testing.T) {
	cfg := config.Default()
	d := Generate(baseSnapshot(), cfg)
	rule := policyByName(t, d, "pni-allow-dns").Spec.Egress[0]
	if rule.Destination.Selector != "k8s-app == 'kube-dns'" || rule.Destination.NamespaceSelector != "projectcalico.org/name == 'kube-system'" {
		t.Errorf("cluster DNS destination %+v", rule.Destination)
	}
	cfg.DNS.Mode = config.DNSAny
	d = Generate(baseSnapshot(), cfg)
	p := policyByName(t, d, "pni-allow-dns")
	for _, r := range p.Spec.Egress {
		if r.Destination.Selector != "" || r.Destination.NamespaceSelector != "" || len(r.Destination.Ports) != 1 || r.Destination.Ports[0] != calico.PortNumber(53) {
			t.Errorf("any-destination DNS rule %+v", r)
		}
	}
	if len(p.Spec.Egress) != 2 || p.Spec.Egress[0].Protocol.Name != "UDP" || p.Spec.Egress[1].Protocol.Name != "TCP" {
		t.Errorf("DNS rules %+v", p.Spec.Egress)
	}
}

func TestKubeAPI(t *testing.T) {
	cfg := config.Default()
	cfg.KubeAPI.ExtraCIDRs = []string{"192.0.2.0/28"}
	snap := baseSnapshot()
	snap.Nodes = []Node{
		{Name: "b", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}},
		{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}},
	}
	snap.APIEndpoints = []APIEndpoint{{netip.MustParseAddr("10.0.0.1"), 6443}, {netip.MustParseAddr("172.16.0.1"), 443}}
	d := Generate(snap, cfg)
	got := policyByName(t, d, "pni-allow-kube-api").Spec.Egress
	want := []calico.Rule{
		{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP), Destination: calico.EntityRule{Nets: []string{"172.16.0.1/32"}, Ports: []calico.Port{calico.PortNumber(443)}}},
		{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP), Destination: calico.EntityRule{Nets: []string{"10.0.0.1/32", "10.0.0.2/32", "192.0.2.0/28"}, Ports: []calico.Port{calico.PortNumber(6443)}}},
		{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP), Destination: calico.EntityRule{Nets: []string{"fd00::2/128"}, Ports: []calico.Port{calico.PortNumber(6443)}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kube-api rules\n%+v\nwant\n%+v", got, want)
	}

	// No addresses at all: no rule, never a rule without nets.
	d = Generate(baseSnapshot(), config.Default())
	p := policyByName(t, d, "pni-allow-kube-api")
	if len(p.Spec.Egress) != 0 || !slices.Equal(p.Spec.Types, []calico.PolicyType{calico.Egress}) {
		t.Errorf("kube-api policy without addresses: %+v", p.Spec)
	}
}

func TestRoles(t *testing.T) {
	cfg := config.Default()
	d := Generate(baseSnapshot(
		rancherNS("redis", "p-aaaaa", config.RoleLabelPrefix+"redis", "true"),
		rancherNS("app", "p-bbbbb", config.AllowLabelPrefix+"redis", ""),
		rancherNS("other", "p-bbbbb", config.RoleLabelPrefix+"mongo", "x"),
	), cfg)
	p := policyByName(t, d, "pni-role-redis")
	if p.Spec.NamespaceSelector != "calico-pni.io/isolated == 'true' && (has(network-policy/role_redis) || has(network-policy/allow_redis))" {
		t.Errorf("role selects %q", p.Spec.NamespaceSelector)
	}
	rule := calico.Rule{
		Action:      calico.Allow,
		Protocol:    calico.ProtocolFor(calico.TCP),
		Source:      calico.EntityRule{NamespaceSelector: "has(network-policy/allow_redis)"},
		Destination: calico.EntityRule{NamespaceSelector: "has(network-policy/role_redis)", Ports: []calico.Port{calico.PortNumber(6379)}},
	}
	if !reflect.DeepEqual(p.Spec.Ingress, []calico.Rule{rule}) || !reflect.DeepEqual(p.Spec.Egress, []calico.Rule{rule}) {
		t.Errorf("role rules %+v / %+v", p.Spec.Ingress, p.Spec.Egress)
	}
	for _, ns := range []string{"redis", "app"} {
		if !slices.Contains(nsState(t, d, ns).Status.Policies, "pni-role-redis") {
			t.Errorf("%s does not list pni-role-redis", ns)
		}
	}
	other := nsState(t, d, "other")
	if other.Status.State != Error || !other.Status.Isolated || len(other.Status.Problems) != 1 || !strings.Contains(other.Status.Problems[0], `role "mongo", which the configuration does not define`) {
		t.Errorf("unknown role: %+v", other.Status)
	}
	if slices.Contains(policyNames(d), "pni-role-mongo") {
		t.Error("a policy was written for an unconfigured role")
	}

	// A role nobody isolated uses gets no policy.
	d = Generate(baseSnapshot(rancherNS("app", "p-bbbbb")), cfg)
	if slices.Contains(policyNames(d), "pni-role-redis") {
		t.Error("pni-role-redis written with no namespace using it")
	}
}

func TestIngressOnly(t *testing.T) {
	cfg := config.Default()
	cfg.IsolateEgress = false
	d := Generate(articleSnapshot(t), cfg)
	for _, p := range d.Policies {
		if slices.Contains(p.Spec.Types, calico.Egress) || len(p.Spec.Egress) > 0 {
			t.Errorf("%s has egress with isolateEgress off: %v", p.Name, p.Spec.Types)
		}
	}
	for _, gone := range []string{"pni-deny-egress", "pni-allow-dns", "pni-allow-kube-api", "pni-allow-ingress-controller-egress"} {
		if slices.Contains(policyNames(d), gone) {
			t.Errorf("%s written with isolateEgress off", gone)
		}
	}
}

func TestDeterministic(t *testing.T) {
	snap := articleSnapshot(t)
	want := Generate(snap, config.Default())
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := snap
		shuffled.Namespaces = slices.Clone(snap.Namespaces)
		shuffled.Nodes = slices.Clone(snap.Nodes)
		r.Shuffle(len(shuffled.Namespaces), func(i, j int) {
			shuffled.Namespaces[i], shuffled.Namespaces[j] = shuffled.Namespaces[j], shuffled.Namespaces[i]
		})
		r.Shuffle(len(shuffled.Nodes), func(i, j int) { shuffled.Nodes[i], shuffled.Nodes[j] = shuffled.Nodes[j], shuffled.Nodes[i] })
		if got := Generate(shuffled, config.Default()); !reflect.DeepEqual(got, want) {
			t.Fatal("the output depends on the order of the input")
		}
	}
}

func TestWriteOrder(t *testing.T) {
	d := Generate(articleSnapshot(t), config.Default())
	seenBaseline := false
	for _, p := range d.Policies {
		if p.Class == calico.ClassBaseline {
			seenBaseline = true
		} else if seenBaseline {
			t.Fatalf("allow policy %s comes after a baseline policy", p.Name)
		}
	}
	if !seenBaseline {
		t.Fatal("no baseline policy")
	}
}

func TestStatusListsSelectingPolicies(t *testing.T) {
	d := Generate(articleSnapshot(t), config.Default())
	shop := nsState(t, d, "shop")
	for _, want := range []string{"pni-deny-ingress", "pni-deny-egress", "pni-project-p-b6jcw", "pni-allow-ingress-controller", "pni-role-redis", "pni-allow-dns"} {
		if !slices.Contains(shop.Status.Policies, want) {
			t.Errorf("shop does not list %s: %v", want, shop.Status.Policies)
		}
	}
	for _, not := range []string{"pni-project-p-mcb29", "pni-allow-ingress-controller-egress"} {
		if slices.Contains(shop.Status.Policies, not) {
			t.Errorf("shop lists %s", not)
		}
	}
	if !slices.IsSorted(shop.Status.Policies) || !reflect.DeepEqual(shop.Requires, shop.Status.Policies) {
		t.Errorf("policies %v, requires %v", shop.Status.Policies, shop.Requires)
	}
}

func TestLongNamesStayValid(t *testing.T) {
	long := strings.Repeat("a", 55) + "-" + strings.Repeat("b", 7)
	cfg := config.Default()
	cfg.IsolateUnassigned = true
	d := Generate(baseSnapshot(rancherNS(long, ""), rancherNS(long[:60]+"xx", "")), cfg)
	if len(d.Invalid) > 0 {
		t.Fatalf("invalid: %v", d.Invalid)
	}
	a, b := nsState(t, d, long).Requires, nsState(t, d, long[:60]+"xx").Requires
	last := func(names []string) string {
		for _, n := range names {
			if strings.HasPrefix(n, "pni-namespace-") {
				return n
			}
		}
		return ""
	}
	if last(a) == "" || last(a) == last(b) || len(last(a)) > 63 {
		t.Errorf("own policy names %q and %q", last(a), last(b))
	}
}

func TestNoSystemProject(t *testing.T) {
	d := Generate(Snapshot{Namespaces: []Namespace{rancherNS("kube-system", ""), rancherNS("app", "p-aaaaa")}}, config.Default())
	if d.SystemProject != "" || len(d.Problems) != 1 || !strings.Contains(d.Problems[0], "no System project") {
		t.Errorf("system %q problems %v", d.SystemProject, d.Problems)
	}
	if slices.Contains(policyNames(d), "pni-allow-from-system-project") {
		t.Error("a System project policy without a System project")
	}
}

func TestInvalidPolicyHoldsNamespaces(t *testing.T) {
	cfg := config.Default()
	// A value no Calico selector can quote: it must not reach the cluster.
	cfg.DNS.PodLabels = map[string]string{"k8s-app": `kube'dns"`}
	d := Generate(baseSnapshot(rancherNS("app", "p-aaaaa")), cfg)
	if len(d.Invalid) != 1 || d.Invalid[0].Name != "pni-allow-dns" {
		t.Fatalf("invalid = %v", d.Invalid)
	}
	if slices.Contains(policyNames(d), "pni-allow-dns") {
		t.Error("the invalid policy is among those to write")
	}
	st := nsState(t, d, "app")
	if st.Status.State != Error || !slices.Contains(st.Requires, "pni-allow-dns") || !strings.Contains(strings.Join(st.Status.Problems, " "), "pni-allow-dns is invalid") {
		t.Errorf("app status %+v requires %v", st.Status, st.Requires)
	}
}
