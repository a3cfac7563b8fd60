package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// The tests in this file compare the server with an oracle of their own: a
// description of what the article fixture (testdata/article-cluster.yaml)
// must come to under the default configuration on Calico 3.28, written
// out by hand from the fixture and docs/policies.md, never computed by
// calico-pni's snapshot or generator. A bug in snapshotting, trimming or
// generating therefore shows here even where the tests that compare with
// the generator agree with it.

// The fixture, as the oracle sees it.
const (
	systemProject = "p-7xq2n" // kube-system, cattle-system, cattle-monitoring-system, calico-system
	shopProject   = "p-b6jcw" // default, shop, shop-batch, payments, legacy (opted out)
	platform      = "p-mcb29" // ingress-nginx, redis, intruder (its label says p-b6jcw; the annotation wins)
)

// oracleNamespace is the expected outcome for one namespace.
type oracleNamespace struct {
	state    policies.State
	isolated bool
	project  string // calico-pni.io/project, "" for none
}

// oracleNamespaces under the default configuration.
var oracleNamespaces = map[string]oracleNamespace{
	"kube-system":              {policies.Exempt, false, systemProject},
	"cattle-system":            {policies.Exempt, false, systemProject},
	"cattle-monitoring-system": {policies.Exempt, false, systemProject},
	"calico-system":            {policies.Exempt, false, systemProject},
	"kube-public":              {policies.Exempt, false, ""},
	"kube-node-lease":          {policies.Exempt, false, ""},
	"ingress-nginx":            {policies.Isolated, true, platform},
	"redis":                    {policies.Isolated, true, platform},
	"intruder":                 {policies.Error, true, platform},
	"default":                  {policies.Isolated, true, shopProject},
	"shop":                     {policies.Isolated, true, shopProject},
	"shop-batch":               {policies.Isolated, true, shopProject},
	"payments":                 {policies.Isolated, true, shopProject},
	"legacy":                   {policies.Exempt, false, shopProject},
	"sandbox":                  {policies.Open, false, ""},
	// Claims p-b6jcw by label only: isolated on its own, in no project.
	"squatter": {policies.Error, true, ""},
}

// isolated selects what every calico-pni policy selects first.
const isolatedSel = "calico-pni.io/isolated == 'true'"

// oraclePolicies are the specs of the policies calico-pni must write, by
// name, as Calico 3.28 stores them (crd.projectcalico.org/v1,
// default.<name>).
var oraclePolicies = map[string]string{
	// The deny baseline: no rules, it only selects.
	"default.pni-deny-ingress": `{namespaceSelector: "` + isolatedSel + `", order: 10000, types: [Ingress]}`,
	"default.pni-deny-egress":  `{namespaceSelector: "` + isolatedSel + `", order: 10000, types: [Egress]}`,
	// One allow policy per project with isolated namespaces.
	"default.pni-project-p-b6jcw": `{namespaceSelector: "` + isolatedSel + ` && calico-pni.io/project == 'p-b6jcw'", order: 2000, types: [Ingress, Egress],
		ingress: [{action: Allow, source: {namespaceSelector: "calico-pni.io/project == 'p-b6jcw'"}}],
		egress: [{action: Allow, destination: {namespaceSelector: "calico-pni.io/project == 'p-b6jcw'"}}]}`,
	"default.pni-project-p-mcb29": `{namespaceSelector: "` + isolatedSel + ` && calico-pni.io/project == 'p-mcb29'", order: 2000, types: [Ingress, Egress],
		ingress: [{action: Allow, source: {namespaceSelector: "calico-pni.io/project == 'p-mcb29'"}}],
		egress: [{action: Allow, destination: {namespaceSelector: "calico-pni.io/project == 'p-mcb29'"}}]}`,
	// squatter, isolated on its own.
	"default.pni-namespace-squatter": `{namespaceSelector: "` + isolatedSel + ` && projectcalico.org/name == 'squatter'", order: 2000, types: [Ingress, Egress],
		ingress: [{action: Allow, source: {namespaceSelector: "projectcalico.org/name == 'squatter'"}}],
		egress: [{action: Allow, destination: {namespaceSelector: "projectcalico.org/name == 'squatter'"}}]}`,
	"default.pni-allow-from-system-project": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Ingress],
		ingress: [{action: Allow, source: {namespaceSelector: "calico-pni.io/project == 'p-7xq2n'"}}]}`,
	// DNS to the cluster DNS pods only, UDP and TCP 53.
	"default.pni-allow-dns": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Egress], egress: [
		{action: Allow, protocol: UDP, destination: {namespaceSelector: "projectcalico.org/name == 'kube-system'", selector: "k8s-app == 'kube-dns'", ports: [53]}},
		{action: Allow, protocol: TCP, destination: {namespaceSelector: "projectcalico.org/name == 'kube-system'", selector: "k8s-app == 'kube-dns'", ports: [53]}}]}`,
	// The Kubernetes API: the Service's endpoints (Calico 3.20+), and
	// every node address (cp-1, worker-1 with its external IP, worker-2
	// with its IPv6 address, edge-1) on 6443; 10.0.0.11 is also the
	// endpoint in the EndpointSlice.
	"default.pni-allow-kube-api": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Egress], egress: [
		{action: Allow, protocol: TCP, destination: {services: {name: kubernetes, namespace: default}}},
		{action: Allow, protocol: TCP, destination: {nets: [10.0.0.11/32, 10.0.0.21/32, 10.0.0.22/32, 10.0.1.5/32, 203.0.113.21/32], ports: [6443]}},
		{action: Allow, protocol: TCP, destination: {nets: ["fd00::22/128"], ports: [6443]}}]}`,
	// Host network: node internal IPs and Calico's tunnel addresses.
	"default.pni-allow-from-host-network": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Ingress], ingress: [
		{action: Allow, source: {nets: [10.0.0.11/32, 10.0.0.21/32, 10.0.0.22/32, 10.0.1.5/32, 10.42.0.1/32, 10.42.1.1/32, 10.42.2.1/32, 10.42.3.0/32]}},
		{action: Allow, source: {nets: ["fd00::22/128"]}}]}`,
	// shop/web is a NodePort Service: outside traffic to app=web on 8080.
	"default.pni-allow-external-services": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Ingress], ingress: [
		{action: Allow, protocol: TCP, source: {notSelector: "projectcalico.org/orchestrator == 'k8s'"}, destination: {namespaceSelector: "projectcalico.org/name == 'shop'", selector: "app == 'web'", ports: [8080]}}]}`,
	// The ingress-nginx controller pod binds host ports 80 and 443;
	// selected by its labels without pod-template-hash.
	"default.pni-allow-host-ports": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Ingress], ingress: [
		{action: Allow, protocol: TCP, source: {notSelector: "projectcalico.org/orchestrator == 'k8s'"}, destination: {namespaceSelector: "projectcalico.org/name == 'ingress-nginx'",
			selector: "app.kubernetes.io/component == 'controller' && app.kubernetes.io/name == 'ingress-nginx'", ports: [80, 443]}}]}`,
	"default.pni-allow-ingress-controller": `{namespaceSelector: "` + isolatedSel + ` && network-policy/ingress == 'nginx'", order: 2000, types: [Ingress], ingress: [
		{action: Allow, protocol: TCP, source: {namespaceSelector: "ingress == 'nginx'"}, destination: {namespaceSelector: "network-policy/ingress == 'nginx'", ports: [80, 443]}}]}`,
	"default.pni-allow-ingress-controller-egress": `{namespaceSelector: "` + isolatedSel + ` && ingress == 'nginx'", order: 2000, types: [Egress], egress: [
		{action: Allow, protocol: TCP, source: {namespaceSelector: "ingress == 'nginx'"}, destination: {namespaceSelector: "network-policy/ingress == 'nginx'", ports: [80, 443]}}]}`,
	// redis offers the role, shop consumes it.
	"default.pni-role-redis": `{namespaceSelector: "` + isolatedSel + ` && (has(network-policy/role_redis) || has(network-policy/allow_redis))", order: 2000, types: [Ingress, Egress],
		ingress: [{action: Allow, protocol: TCP, source: {namespaceSelector: "has(network-policy/allow_redis)"}, destination: {namespaceSelector: "has(network-policy/role_redis)", ports: [6379]}}],
		egress: [{action: Allow, protocol: TCP, source: {namespaceSelector: "has(network-policy/allow_redis)"}, destination: {namespaceSelector: "has(network-policy/role_redis)", ports: [6379]}}]}`,
	// payments carries the internet label: anywhere but the default
	// RKE2 ranges, link-local and the node addresses (the tunnel
	// addresses lie inside 10.42.0.0/16).
	"default.pni-allow-internet": `{namespaceSelector: "` + isolatedSel + ` && has(network-policy/allow_internet)", order: 2000, types: [Egress], egress: [
		{action: Allow, ipVersion: 4, destination: {nets: [0.0.0.0/0], notNets: [10.0.0.11/32, 10.0.0.21/32, 10.0.0.22/32, 10.0.1.5/32, 10.42.0.0/16, 10.43.0.0/16, 169.254.0.0/16, 203.0.113.21/32]}},
		{action: Allow, ipVersion: 6, destination: {nets: ["::/0"], notNets: ["fd00::22/128", "fe80::/10"]}}]}`,
	// Rancher's agent, monitoring and logging, by namespace and service
	// account (the default configuration's lists).
	"default.pni-allow-rancher-agent-egress": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Egress], egress: [{action: Allow}],
		selector: "projectcalico.org/namespace == 'cattle-system' && projectcalico.org/serviceaccount == 'cattle'"}`,
	"default.pni-allow-logging-egress": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Egress], egress: [{action: Allow}],
		selector: "projectcalico.org/namespace == 'cattle-logging-system' && (projectcalico.org/serviceaccount == 'rancher-logging-root-fluentd' || projectcalico.org/serviceaccount == 'rancher-logging-root-fluentbit') || projectcalico.org/namespace == 'cattle-logging' && projectcalico.org/serviceaccount == 'rancher-logging-fluentd'"}`,
	"default.pni-allow-monitoring-egress": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Egress], egress: [{action: Allow}],
		selector: "projectcalico.org/namespace == 'cattle-monitoring-system' && projectcalico.org/serviceaccount == 'rancher-monitoring-prometheus' || projectcalico.org/namespace starts with 'cattle-project-p-' && projectcalico.org/namespace ends with '-monitoring' && projectcalico.org/serviceaccount starts with 'cattle-project-p-' && projectcalico.org/serviceaccount ends with '-prometheus' || projectcalico.org/namespace == 'cattle-prometheus' && projectcalico.org/serviceaccount == 'cluster-monitoring' || projectcalico.org/namespace starts with 'cattle-prometheus-p-' && projectcalico.org/serviceaccount == 'project-monitoring'"}`,
	"default.pni-allow-monitoring-ingress": `{namespaceSelector: "` + isolatedSel + `", order: 2000, types: [Ingress], ingress: [
		{action: Allow, source: {namespaceSelector: "projectcalico.org/name == 'cattle-monitoring-system'", selector: "projectcalico.org/serviceaccount == 'rancher-monitoring-prometheus'"}},
		{action: Allow, source: {namespaceSelector: "projectcalico.org/name starts with 'cattle-project-p-' && projectcalico.org/name ends with '-monitoring'", selector: "projectcalico.org/serviceaccount starts with 'cattle-project-p-' && projectcalico.org/serviceaccount ends with '-prometheus'"}},
		{action: Allow, source: {namespaceSelector: "projectcalico.org/name == 'cattle-prometheus'", selector: "projectcalico.org/serviceaccount == 'cluster-monitoring'"}},
		{action: Allow, source: {namespaceSelector: "projectcalico.org/name starts with 'cattle-prometheus-p-'", selector: "projectcalico.org/serviceaccount == 'project-monitoring'"}}]}`,
}

// oracleSelectedBy lists, for a few namespaces, the policies their status
// must name: what applies to shop (a backend, a redis consumer, with a
// NodePort Service) and to redis (which offers the role).
var oracleSelectedBy = map[string][]string{
	"shop": {"pni-allow-dns", "pni-allow-external-services", "pni-allow-from-host-network", "pni-allow-from-system-project",
		"pni-allow-ingress-controller", "pni-allow-kube-api", "pni-allow-logging-egress", "pni-allow-monitoring-egress",
		"pni-allow-monitoring-ingress", "pni-allow-rancher-agent-egress", "pni-deny-egress", "pni-deny-ingress",
		"pni-project-p-b6jcw", "pni-role-redis"},
	"redis": {"pni-allow-dns", "pni-allow-from-host-network", "pni-allow-from-system-project", "pni-allow-kube-api",
		"pni-allow-logging-egress", "pni-allow-monitoring-egress", "pni-allow-monitoring-ingress",
		"pni-allow-rancher-agent-egress", "pni-deny-egress", "pni-deny-ingress", "pni-project-p-mcb29", "pni-role-redis"},
}

// matchesOracle compares the server with the oracle: every managed
// policy's whole spec, its class label, no policy more or less, and every
// namespace's calico-pni labels and state.
func matchesOracle(e *testbed.Env, wantPolicies map[string]string, wantNamespaces map[string]oracleNamespace) error {
	got, err := managedPolicies(e, v128)
	if err != nil {
		return err
	}
	var errs []string
	for key, u := range got {
		name := strings.TrimPrefix(key, "/")
		want, ok := wantPolicies[name]
		if !ok {
			errs = append(errs, "unexpected managed policy "+name)
			continue
		}
		var wantSpec, gotSpec any
		if err := yaml.Unmarshal([]byte(want), &wantSpec); err != nil {
			return fmt.Errorf("the oracle of %s does not parse: %v", name, err)
		}
		b, _ := json.Marshal(u.Object["spec"])
		_ = json.Unmarshal(b, &gotSpec)
		wantJSON, _ := json.Marshal(wantSpec)
		_ = json.Unmarshal(wantJSON, &wantSpec)
		if !reflect.DeepEqual(wantSpec, gotSpec) {
			errs = append(errs, fmt.Sprintf("%s spec\n got %s\nwant %s", name, b, wantJSON))
		}
		class := "allow"
		if strings.HasPrefix(name, "default.pni-deny-") {
			class = "baseline"
		}
		if l := u.GetLabels(); l["app.kubernetes.io/managed-by"] != "calico-pni" || l["calico-pni.io/class"] != class {
			errs = append(errs, fmt.Sprintf("%s labels %v", name, l))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(wantPolicies)) {
		if _, ok := got["/"+name]; !ok {
			errs = append(errs, "missing policy "+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(wantNamespaces)) {
		want := wantNamespaces[name]
		st, labels, err := readStatus(e, name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		wantLabels := map[string]string{}
		if want.project != "" {
			wantLabels[policies.ProjectLabel] = want.project
		}
		if want.isolated {
			wantLabels[policies.IsolatedLabel] = "true"
		}
		own := map[string]string{}
		for k, v := range labels {
			if strings.HasPrefix(k, policies.LabelPrefix) {
				own[k] = v
			}
		}
		if !maps.Equal(own, wantLabels) || st.State != want.state || st.Isolated != want.isolated || st.Project != want.project {
			errs = append(errs, fmt.Sprintf("namespace %s: labels %v, status %+v; want %+v", name, own, st, want))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// A cold start on the article fixture writes exactly what the oracle says.
func TestOracleColdStart(t *testing.T) {
	e := fixtureEnv(t)
	r := start(t, e, config.Default())
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, oraclePolicies, oracleNamespaces) })
	for name, want := range oracleSelectedBy {
		st, _ := status(t, e, name)
		if !slices.Equal(st.Policies, want) {
			t.Errorf("%s's status names %v, want %v", name, st.Policies, want)
		}
	}
	// The policies of the cluster's own namespaces are untouched: none
	// selects the System project or an exempt namespace, since every one
	// requires the isolated label, which those namespaces never get.
	for name, ns := range oracleNamespaces {
		if !ns.isolated {
			_, labels := status(t, e, name)
			if _, ok := labels[policies.IsolatedLabel]; ok {
				t.Errorf("%s carries the isolated label", name)
			}
		}
	}
}

// Moving a namespace to another project, then its project emptying: the
// namespace follows, the emptied project's policy goes.
func TestOracleProjectMoves(t *testing.T) {
	e := fixtureEnv(t)
	r := start(t, e, config.Default())
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, oraclePolicies, oracleNamespaces) })

	// shop-batch moves to the platform project.
	moveTo(t, e, "shop-batch", platform)
	t.Cleanup(func() { moveTo(t, e, "shop-batch", shopProject) })
	nsWant := maps.Clone(oracleNamespaces)
	nsWant["shop-batch"] = oracleNamespace{policies.Isolated, true, platform}
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, oraclePolicies, nsWant) })

	// Then ingress-nginx, redis, intruder and shop-batch all go to a new
	// project p-new01: p-mcb29 is empty and its policy goes; p-new01 gets
	// one.
	for _, name := range []string{"ingress-nginx", "redis", "intruder", "shop-batch"} {
		moveTo(t, e, name, "p-new01")
		nsWant[name] = oracleNamespace{policies.Isolated, true, "p-new01"}
		if name == "intruder" {
			// Its label still says p-b6jcw: still an error, now in p-new01.
			nsWant[name] = oracleNamespace{policies.Error, true, "p-new01"}
		}
	}
	t.Cleanup(func() {
		for _, name := range []string{"ingress-nginx", "redis", "intruder"} {
			moveTo(t, e, name, platform)
		}
	})
	polWant := maps.Clone(oraclePolicies)
	delete(polWant, "default.pni-project-p-mcb29")
	polWant["default.pni-project-p-new01"] = `{namespaceSelector: "` + isolatedSel + ` && calico-pni.io/project == 'p-new01'", order: 2000, types: [Ingress, Egress],
		ingress: [{action: Allow, source: {namespaceSelector: "calico-pni.io/project == 'p-new01'"}}],
		egress: [{action: Allow, destination: {namespaceSelector: "calico-pni.io/project == 'p-new01'"}}]}`
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, polWant, nsWant) })
}

// Egress isolation switched off: the egress baseline and every
// egress-only allow go, and the two-way policies keep their ingress half.
func TestOracleEgressOff(t *testing.T) {
	e := fixtureEnv(t)
	r := start(t, e, config.Default())
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, oraclePolicies, oracleNamespaces) })

	off := config.Default()
	off.IsolateEgress = false
	r.c.SetConfig(off)
	want := map[string]string{}
	for _, name := range []string{"default.pni-deny-ingress", "default.pni-allow-from-system-project", "default.pni-allow-from-host-network",
		"default.pni-allow-external-services", "default.pni-allow-host-ports", "default.pni-allow-ingress-controller", "default.pni-allow-monitoring-ingress"} {
		want[name] = oraclePolicies[name]
	}
	for _, p := range []struct{ name, sel, from string }{
		{"default.pni-project-p-b6jcw", "calico-pni.io/project == 'p-b6jcw'", "calico-pni.io/project == 'p-b6jcw'"},
		{"default.pni-project-p-mcb29", "calico-pni.io/project == 'p-mcb29'", "calico-pni.io/project == 'p-mcb29'"},
		{"default.pni-namespace-squatter", "projectcalico.org/name == 'squatter'", "projectcalico.org/name == 'squatter'"},
	} {
		want[p.name] = `{namespaceSelector: "` + isolatedSel + ` && ` + p.sel + `", order: 2000, types: [Ingress],
			ingress: [{action: Allow, source: {namespaceSelector: "` + p.from + `"}}]}`
	}
	want["default.pni-role-redis"] = `{namespaceSelector: "` + isolatedSel + ` && (has(network-policy/role_redis) || has(network-policy/allow_redis))", order: 2000, types: [Ingress],
		ingress: [{action: Allow, protocol: TCP, source: {namespaceSelector: "has(network-policy/allow_redis)"}, destination: {namespaceSelector: "has(network-policy/role_redis)", ports: [6379]}}]}`
	testbed.Eventually(t, wait, func() error { return matchesOracle(e, want, oracleNamespaces) })
}

func moveTo(t *testing.T, e *testbed.Env, name, project string) {
	t.Helper()
	ns, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Annotations["field.cattle.io/projectId"] = "c-m4x7q:" + project
	if ns.Name != "intruder" {
		ns.Labels["field.cattle.io/projectId"] = project
	}
	if _, err := e.Kube.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
