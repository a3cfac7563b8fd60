package policies

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestNodeFromReadsCalicoAnnotations(t *testing.T) {
	n := NodeFrom(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{
			"projectcalico.org/IPv4Address":                "10.0.0.5/24",
			"projectcalico.org/IPv4IPIPTunnelAddr":         "10.42.0.1",
			"projectcalico.org/IPv4VXLANTunnelAddr":        "10.42.0.2",
			"projectcalico.org/IPv6VXLANTunnelAddr":        "fd00:42::2",
			"projectcalico.org/IPv4WireguardInterfaceAddr": "10.42.0.3",
			"projectcalico.org/IPv6Address":                "fd00::5/64",
			"projectcalico.org/IPv4IPIPTunnelAddr-broken":  "x",
		}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.5"},
			{Type: corev1.NodeHostName, Address: "n"},
		}},
	})
	if want := addrs("10.0.0.5", "203.0.113.5"); !reflect.DeepEqual(n.Addresses, want) {
		t.Errorf("Addresses %v, want %v", n.Addresses, want)
	}
	// The external IP is not a host-network source; everything else is.
	if want := addrs("10.0.0.5", "10.42.0.1", "10.42.0.2", "10.42.0.3", "fd00::5", "fd00:42::2"); !reflect.DeepEqual(n.HostAddresses, want) {
		t.Errorf("HostAddresses %v, want %v", n.HostAddresses, want)
	}
}

func TestHostNetwork(t *testing.T) {
	snap := baseSnapshot(rancherNS("app", "p-aaaaa"))
	snap.Nodes = []Node{{Name: "a", HostAddresses: addrs("10.42.0.1", "10.0.0.5", "fd00::5")}}
	d := Generate(snap, config.Default())
	p := policyByName(t, d, "pni-allow-from-host-network")
	want := []calico.Rule{
		{Action: calico.Allow, Source: calico.EntityRule{Nets: []string{"10.0.0.5/32", "10.42.0.1/32"}}},
		{Action: calico.Allow, Source: calico.EntityRule{Nets: []string{"fd00::5/128"}}},
	}
	if !reflect.DeepEqual(p.Spec.Ingress, want) {
		t.Errorf("rules %+v", p.Spec.Ingress)
	}
	// No node addresses: the policy allows nothing, never "from anywhere".
	d = Generate(baseSnapshot(rancherNS("app", "p-aaaaa")), config.Default())
	if p := policyByName(t, d, "pni-allow-from-host-network"); len(p.Spec.Ingress) != 0 {
		t.Errorf("rules without addresses: %+v", p.Spec.Ingress)
	}
	cfg := config.Default()
	cfg.HostNetwork.Enabled = false
	if slices.Contains(policyNames(Generate(snap, cfg)), "pni-allow-from-host-network") {
		t.Error("written with hostNetwork disabled")
	}
}

func service(ns, name string, typ corev1.ServiceType, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, Selector: selector, Ports: ports},
	}
}

func TestServiceFrom(t *testing.T) {
	web := map[string]string{"app": "web"}
	tests := []struct {
		svc      *corev1.Service
		external bool
		ports    []ServicePort
	}{
		{service("a", "np", corev1.ServiceTypeNodePort, web, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}), true,
			[]ServicePort{{"TCP", calico.PortNumber(8080)}}},
		{service("a", "lb", corev1.ServiceTypeLoadBalancer, web, corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}), true,
			[]ServicePort{{"UDP", calico.PortNumber(53)}}},
		{service("a", "named", corev1.ServiceTypeNodePort, web, corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}), true,
			[]ServicePort{{"TCP", calico.Port{Name: "http"}}}},
		{service("a", "internal", corev1.ServiceTypeClusterIP, web, corev1.ServicePort{Port: 80}), false, nil},
	}
	for _, tt := range tests {
		got, ok := ServiceFrom(tt.svc)
		if ok != tt.external || (ok && !reflect.DeepEqual(got.Ports, tt.ports)) {
			t.Errorf("%s: %v %+v, want %v %+v", tt.svc.Name, ok, got.Ports, tt.external, tt.ports)
		}
	}
	ext := service("a", "ext", corev1.ServiceTypeClusterIP, web, corev1.ServicePort{Port: 80})
	ext.Spec.ExternalIPs = []string{"192.0.2.1"}
	if _, ok := ServiceFrom(ext); !ok {
		t.Error("a ClusterIP Service with externalIPs is reachable from outside")
	}
}

func TestExternalServices(t *testing.T) {
	snap := baseSnapshot(rancherNS("shop", "p-aaaaa"), rancherNS("loose", ""))
	snap.ExternalServices = []Service{
		{Namespace: "shop", Name: "web", Selector: map[string]string{"app": "web"}, Ports: []ServicePort{{"TCP", calico.PortNumber(8080)}, {"UDP", calico.PortNumber(53)}, {"TCP", calico.PortNumber(443)}}},
		{Namespace: "shop", Name: "manual", Ports: []ServicePort{{"TCP", calico.PortNumber(80)}}},
		// In a namespace that is not isolated: open already, no rule.
		{Namespace: "loose", Name: "web", Selector: map[string]string{"app": "web"}, Ports: []ServicePort{{"TCP", calico.PortNumber(80)}}},
	}
	d := Generate(snap, config.Default())
	p := policyByName(t, d, "pni-allow-external-services")
	dest := func(ports ...calico.Port) calico.EntityRule {
		return calico.EntityRule{NamespaceSelector: "projectcalico.org/name == 'shop'", Selector: "app == 'web'", Ports: ports}
	}
	notPods := calico.EntityRule{NotSelector: "projectcalico.org/orchestrator == 'k8s'"}
	want := []calico.Rule{
		{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP), Source: notPods, Destination: dest(calico.PortNumber(443), calico.PortNumber(8080))},
		{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.UDP), Source: notPods, Destination: dest(calico.PortNumber(53))},
	}
	if !reflect.DeepEqual(p.Spec.Ingress, want) {
		t.Errorf("rules\n%+v\nwant\n%+v", p.Spec.Ingress, want)
	}
	shop := nsState(t, d, "shop")
	if shop.Status.State != Error || !strings.Contains(strings.Join(shop.Status.Problems, ""), "service manual is reachable from outside the cluster but has no selector") {
		t.Errorf("shop status %+v", shop.Status)
	}
	if !slices.Contains(shop.Requires, "pni-allow-external-services") {
		t.Errorf("shop does not require the policy that admits its Service: %v", shop.Requires)
	}
	other := Generate(baseSnapshot(rancherNS("shop", "p-aaaaa"), rancherNS("other", "p-aaaaa")), config.Default())
	if slices.Contains(policyNames(other), "pni-allow-external-services") {
		t.Error("a policy without any Service to admit")
	}
}

func TestExternalServicesSplitOverPolicies(t *testing.T) {
	snap := baseSnapshot(rancherNS("a", "p-aaaaa"), rancherNS("b", "p-aaaaa"))
	for i := range 1500 {
		ns := "a"
		if i >= 1000 {
			ns = "b"
		}
		snap.ExternalServices = append(snap.ExternalServices, Service{Namespace: ns, Name: fmt.Sprintf("s%04d", i),
			Selector: map[string]string{"app": fmt.Sprintf("s%04d", i)}, Ports: []ServicePort{{"TCP", calico.PortNumber(80)}}})
	}
	d := Generate(snap, config.Default())
	if len(d.Invalid) > 0 {
		t.Fatal(d.Invalid)
	}
	first, second := policyByName(t, d, "pni-allow-external-services"), policyByName(t, d, "pni-allow-external-services-2")
	if len(first.Spec.Ingress) != 1024 || len(second.Spec.Ingress) != 476 {
		t.Errorf("rules split %d + %d", len(first.Spec.Ingress), len(second.Spec.Ingress))
	}
	// a's 1000 rules come first; b's 500 straddle both policies.
	if got := nsState(t, d, "a").Requires; !slices.Contains(got, "pni-allow-external-services") || slices.Contains(got, "pni-allow-external-services-2") {
		t.Errorf("a requires %v", got)
	}
	if got := nsState(t, d, "b").Requires; !slices.Contains(got, "pni-allow-external-services") || !slices.Contains(got, "pni-allow-external-services-2") {
		t.Errorf("b requires %v", got)
	}
}

func TestHostPorts(t *testing.T) {
	pod := func(name string, labels map[string]string, phase corev1.PodPhase, hostPort int32) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "edge", Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{
				{ContainerPort: 80, HostPort: hostPort}, {ContainerPort: 9000},
			}}}},
			Status: corev1.PodStatus{Phase: phase},
		}
	}
	nginx := func(hash string) map[string]string {
		return map[string]string{"app": "nginx", "pod-template-hash": hash}
	}
	var snap = baseSnapshot(rancherNS("edge", "p-aaaaa"))
	for _, p := range []*corev1.Pod{
		pod("nginx-1", nginx("aaa"), corev1.PodRunning, 80),
		pod("nginx-2", nginx("bbb"), corev1.PodPending, 80),
		pod("done", map[string]string{"app": "job"}, corev1.PodSucceeded, 8080),
		pod("plain", map[string]string{"app": "plain"}, corev1.PodRunning, 0),
		pod("anonymous", map[string]string{"pod-template-hash": "x"}, corev1.PodRunning, 80),
	} {
		if hp, ok := HostPortPodFrom(p); ok {
			snap.HostPortPods = append(snap.HostPortPods, hp)
		}
	}
	if len(snap.HostPortPods) != 3 {
		t.Fatalf("pods with host ports: %+v", snap.HostPortPods)
	}
	d := Generate(snap, config.Default())
	p := policyByName(t, d, "pni-allow-host-ports")
	want := []calico.Rule{{
		Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP), Source: calico.EntityRule{NotSelector: "projectcalico.org/orchestrator == 'k8s'"},
		Destination: calico.EntityRule{NamespaceSelector: "projectcalico.org/name == 'edge'", Selector: "app == 'nginx'", Ports: []calico.Port{calico.PortNumber(80)}},
	}}
	if !reflect.DeepEqual(p.Spec.Ingress, want) {
		t.Errorf("one rule for both nginx pods, by their workload's labels: %+v", p.Spec.Ingress)
	}
	if st := nsState(t, d, "edge").Status; !strings.Contains(strings.Join(st.Problems, ""), "pod anonymous binds host ports but has no labels") {
		t.Errorf("edge status %+v", st)
	}
}

func TestOptOutAndOptIn(t *testing.T) {
	annotated := func(name, project, value string) Namespace {
		ns := rancherNS(name, project)
		ns.Annotations[config.IsolationAnnotation] = value
		return ns
	}
	snap := baseSnapshot(
		annotated("out", "p-aaaaa", "disabled"),
		annotated("in", "", "enabled"),
		annotated("typo", "p-aaaaa", "off"),
		annotated("sysout", "p-sys00", "enabled"),
	)
	d := Generate(snap, config.Default())
	for _, tt := range []struct {
		ns       string
		state    State
		isolated bool
		text     string
	}{
		{"out", Exempt, false, "opted out with the annotation calico-pni.io/isolation=disabled"},
		{"in", Isolated, true, "isolated on its own (annotation calico-pni.io/isolation=enabled)"},
		{"typo", Error, true, `annotation calico-pni.io/isolation="off" is ignored`},
		{"sysout", Exempt, false, "in the System project"},
	} {
		st := nsState(t, d, tt.ns).Status
		text := st.Reason + strings.Join(st.Problems, "")
		if st.State != tt.state || st.Isolated != tt.isolated || !strings.Contains(text, tt.text) {
			t.Errorf("%s: %+v", tt.ns, st)
		}
	}
	if got := nsState(t, d, "out").Labels; got[ProjectLabel] != "p-aaaaa" || got[IsolatedLabel] != "" {
		t.Errorf("an opted-out namespace stays a member of its project and is not isolated: %v", got)
	}
	if !slices.Contains(policyNames(d), "pni-namespace-in") {
		t.Error("the opted-in namespace has no policy of its own")
	}

	cfg := config.Default()
	cfg.AllowOptOut = false
	st := nsState(t, Generate(snap, cfg), "out").Status
	if st.State != Error || !st.Isolated || !strings.Contains(strings.Join(st.Problems, ""), "opting out is not allowed on this cluster") {
		t.Errorf("opt-out forbidden: %+v", st)
	}
}

func TestInternet(t *testing.T) {
	snap := baseSnapshot(rancherNS("out", "p-aaaaa", "network-policy/allow_internet", "yes"), rancherNS("in", "p-aaaaa"))
	snap.Nodes = []Node{{Name: "n", Addresses: addrs("10.0.0.5", "203.0.113.5"), HostAddresses: addrs("10.0.0.5", "10.42.7.1")}}
	cfg := config.Default()
	d := Generate(snap, cfg)
	p := policyByName(t, d, "pni-allow-internet")
	v4, v6 := 4, 6
	want := []calico.Rule{
		{Action: calico.Allow, IPVersion: &v4, Destination: calico.EntityRule{Nets: []string{"0.0.0.0/0"}, NotNets: []string{"10.0.0.5/32", "10.42.0.0/16", "10.43.0.0/16", "169.254.0.0/16", "203.0.113.5/32"}}},
		{Action: calico.Allow, IPVersion: &v6, Destination: calico.EntityRule{Nets: []string{"::/0"}, NotNets: []string{"fe80::/10"}}},
	}
	if !reflect.DeepEqual(p.Spec.Egress, want) {
		t.Errorf("internet rules\n%+v\nwant\n%+v", p.Spec.Egress, want)
	}
	if p.Spec.NamespaceSelector != "calico-pni.io/isolated == 'true' && has(network-policy/allow_internet)" {
		t.Errorf("selects %s", p.Spec.NamespaceSelector)
	}
	if slices.Contains(nsState(t, d, "in").Requires, "pni-allow-internet") || !slices.Contains(nsState(t, d, "out").Requires, "pni-allow-internet") {
		t.Error("only the labelled namespace uses pni-allow-internet")
	}
	if st := nsState(t, d, "out").Status; len(st.Problems) > 0 {
		t.Errorf("the internet label must not read as an unknown role: %v", st.Problems)
	}
	if slices.Contains(policyNames(Generate(baseSnapshot(rancherNS("in", "p-aaaaa")), cfg)), "pni-allow-internet") {
		t.Error("pni-allow-internet written with nobody using it")
	}
}

func TestProjectPeers(t *testing.T) {
	cfg := config.Default()
	cfg.ProjectPeers = []config.ProjectPeer{
		{Project: "p-aaaaa", From: []string{"p-bbbbb"}},
		{Project: "p-bbbbb", From: []string{"p-ccccc"}, Protocol: "TCP", Ports: []calico.Port{calico.PortNumber(8443)}},
	}
	d := Generate(baseSnapshot(rancherNS("a", "p-aaaaa"), rancherNS("b", "p-bbbbb"), rancherNS("c", "p-ccccc")), cfg)
	a, b, c := policyByName(t, d, "pni-project-p-aaaaa"), policyByName(t, d, "pni-project-p-bbbbb"), policyByName(t, d, "pni-project-p-ccccc")
	if len(a.Spec.Ingress) != 2 || a.Spec.Ingress[1].Source.NamespaceSelector != "calico-pni.io/project == 'p-bbbbb'" || a.Spec.Ingress[1].Protocol != nil {
		t.Errorf("p-aaaaa accepts p-bbbbb on every port: %+v", a.Spec.Ingress)
	}
	if len(b.Spec.Egress) != 2 || b.Spec.Egress[1].Destination.NamespaceSelector != "calico-pni.io/project == 'p-aaaaa'" {
		t.Errorf("p-bbbbb reaches p-aaaaa: %+v", b.Spec.Egress)
	}
	want := calico.Rule{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP),
		Source: calico.EntityRule{NamespaceSelector: "calico-pni.io/project == 'p-ccccc'"}, Destination: calico.EntityRule{Ports: []calico.Port{calico.PortNumber(8443)}}}
	if len(b.Spec.Ingress) != 2 || !reflect.DeepEqual(b.Spec.Ingress[1], want) {
		t.Errorf("p-bbbbb accepts p-ccccc on TCP 8443: %+v", b.Spec.Ingress)
	}
	if len(c.Spec.Egress) != 2 || c.Spec.Egress[1].Destination.Ports[0] != calico.PortNumber(8443) {
		t.Errorf("p-ccccc reaches p-bbbbb on 8443: %+v", c.Spec.Egress)
	}
	if !strings.Contains(b.Description, "accepts p-ccccc") || !strings.Contains(b.Description, "reaches p-aaaaa") {
		t.Errorf("description %q", b.Description)
	}
}

func TestRoleConsumers(t *testing.T) {
	snap := baseSnapshot(
		rancherNS("redis-a", "p-aaaaa", "network-policy/role_redis", ""),
		rancherNS("app-a", "p-aaaaa", "network-policy/allow_redis", ""),
		rancherNS("app-b", "p-bbbbb", "network-policy/allow_redis", ""),
	)
	cfg := config.Default()
	r := cfg.Roles["redis"]
	r.Consumers = config.ConsumersSameProject
	cfg.Roles["redis"] = r
	d := Generate(snap, cfg)
	p := policyByName(t, d, "pni-role-redis")
	if len(p.Spec.Ingress) != 1 ||
		p.Spec.Ingress[0].Source.NamespaceSelector != "has(network-policy/allow_redis) && calico-pni.io/project == 'p-aaaaa'" ||
		p.Spec.Ingress[0].Destination.NamespaceSelector != "has(network-policy/role_redis) && calico-pni.io/project == 'p-aaaaa'" {
		t.Errorf("sameProject rules %+v", p.Spec.Ingress)
	}
	if st := nsState(t, d, "app-b").Status; st.State != Error || !strings.Contains(strings.Join(st.Problems, ""), "label network-policy/allow_redis is ignored: role redis accepts consumers of its own project only") {
		t.Errorf("app-b status %+v", st)
	}
	if st := nsState(t, d, "app-a").Status; len(st.Problems) > 0 {
		t.Errorf("app-a consumes from its own project: %v", st.Problems)
	}

	r.Consumers, r.Projects = config.ConsumersProjects, []string{"p-bbbbb"}
	cfg.Roles["redis"] = r
	d = Generate(snap, cfg)
	p = policyByName(t, d, "pni-role-redis")
	if len(p.Spec.Ingress) != 1 || p.Spec.Ingress[0].Source.NamespaceSelector != "has(network-policy/allow_redis) && calico-pni.io/project in {'p-bbbbb'}" {
		t.Errorf("projects rule %+v", p.Spec.Ingress)
	}
	if st := nsState(t, d, "app-a").Status; !strings.Contains(strings.Join(st.Problems, ""), "accepts consumers of the projects [p-bbbbb] only") {
		t.Errorf("app-a status %+v", st)
	}
}

func TestKubeAPIModes(t *testing.T) {
	snap := baseSnapshot()
	snap.Nodes = []Node{{Name: "n", Addresses: addrs("10.0.0.5")}}
	serviceRule := calico.Rule{Action: calico.Allow, Protocol: calico.ProtocolFor(calico.TCP),
		Destination: calico.EntityRule{Services: &calico.ServiceMatch{Name: "kubernetes", Namespace: "default"}}}
	tests := []struct {
		mode    string
		version calico.Version
		service bool
		nets    bool
	}{
		{config.KubeAPIAuto, calico.Version{Major: 3, Minor: 19}, false, true},
		{config.KubeAPIAuto, calico.Version{Major: 3, Minor: 20}, true, true},
		{config.KubeAPIAuto, calico.Version{}, false, true},
		{config.KubeAPIService, calico.Version{}, true, false},
		{config.KubeAPIAddresses, calico.Version{Major: 3, Minor: 30}, false, true},
		{config.KubeAPIBoth, calico.Version{}, true, true},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.KubeAPI.Mode = tt.mode
		cfg.Enforcement = config.EnforcementDefaultTier
		snap.CalicoVersion = tt.version
		d := Generate(snap, cfg)
		if len(d.Invalid) > 0 {
			t.Fatal(d.Invalid)
		}
		rules := policyByName(t, d, "pni-allow-kube-api").Spec.Egress
		hasService := len(rules) > 0 && reflect.DeepEqual(rules[0], serviceRule)
		hasNets := len(rules) > 0 && len(rules[len(rules)-1].Destination.Nets) > 0
		if hasService != tt.service || hasNets != tt.nets {
			t.Errorf("mode %s on %v: service rule %v, address rule %v", tt.mode, tt.version, hasService, hasNets)
		}
	}
}
