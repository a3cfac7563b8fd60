package rancher

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

func policy(t *testing.T, text string) *networkingv1.NetworkPolicy {
	t.Helper()
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(text), &np); err != nil {
		t.Fatal(err)
	}
	return &np
}

// TestClassifyPolicy reads each policy as rancher/rancher's
// pkg/controllers/managementuser/networkpolicy/ writes it (and as the API
// server then holds it), and the same policies edited.
func TestClassifyPolicy(t *testing.T) {
	tests := []struct {
		name, policy string
		role         IsolationRole
		description  string
	}{
		{"np-default (netpol.go, generateDefaultNamespaceNetworkPolicy)", `
metadata: {name: np-default, namespace: shop, labels: {cattle.io/creator: norman, field.cattle.io/projectId: p-b6jcw}}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-b6jcw}}}, {namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-7xq2n}}}]}]`,
			RoleProjectDefault, "np-default of Rancher's project isolation: ingress from project p-b6jcw and the System project p-7xq2n (namespaces labelled field.cattle.io/projectId, a label Rancher does not guard)"},
		{"np-default-allow-all (netpol.go, generateAllowAllNetworkPolicy)", `
metadata: {name: np-default-allow-all, namespace: cattle-system, labels: {cattle.io/creator: norman, field.cattle.io/projectId: p-7xq2n}}
spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{}], egress: [{}]}`,
			RoleSystemAllowAll, "np-default-allow-all of Rancher's project isolation: every ingress and egress of this System-project namespace allowed"},
		{"hn-nodes (netpol.go, handleHostNetwork)", `
metadata: {name: hn-nodes, namespace: shop, labels: {cattle.io/creator: norman}, ownerReferences: [{apiVersion: v1, kind: Namespace, name: shop, uid: u1}]}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{ipBlock: {cidr: 10.42.0.1/32}}, {ipBlock: {cidr: 10.42.1.1/32}}]}]}`,
			RoleHostNetwork, "hn-nodes of Rancher's project isolation: ingress from the nodes' host-network addresses 10.42.0.1/32, 10.42.1.1/32"},
		{"np-<service> (servicehandler.go): no policyTypes, as Rancher writes it", `
metadata: {name: np-web, namespace: shop, labels: {cattle.io/creator: norman}, ownerReferences: [{apiVersion: v1, kind: Service, name: web, uid: u2}]}
spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 8080, protocol: TCP}]}]}`,
			RoleNodePorts, "np-web of Rancher's project isolation: ingress from anywhere, other projects included (rancher#49430), to the pods of Service web on TCP 8080"},
		{"np-<service> with the policyTypes the API server defaults", `
metadata: {name: np-web, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress], ingress: [{from: [], ports: [{port: http, protocol: TCP}, {port: 53, protocol: UDP}]}]}`,
			RoleNodePorts, "np-web of Rancher's project isolation: ingress from anywhere, other projects included (rancher#49430), to the pods of Service web on TCP http, UDP 53"},
		{"the np-<service> of a Service named default is told from np-default by its shape", `
metadata: {name: np-default, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 80, protocol: TCP}]}]}`,
			RoleNodePorts, "np-default of Rancher's project isolation: ingress from anywhere, other projects included (rancher#49430), to the pods of Service default on TCP 80"},
		{"hp-<pod> (podhandler.go, generatePodNetworkPolicy)", `
metadata: {name: hp-lb-0, namespace: ingress-nginx, labels: {cattle.io/creator: norman}}
spec: {podSelector: {matchLabels: {field.cattle.io/podName: lb-0}}, ingress: [{ports: [{port: 443, protocol: TCP}, {port: 80, protocol: TCP}]}]}`,
			RoleHostPorts, "hp-lb-0 of Rancher's project isolation: ingress from anywhere, other projects included (rancher#49430), to pod lb-0 on TCP 443, TCP 80"},
		{"np-default edited to admit every namespace", `
metadata: {name: np-default, namespace: shop, labels: {cattle.io/creator: norman, field.cattle.io/projectId: p-b6jcw}}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {}}, {namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-7xq2n}}}]}]}`,
			"", "labelled cattle.io/creator: norman as Rancher's project isolation, but its sources are not two namespace selectors on the label field.cattle.io/projectId, as Rancher writes np-default"},
		{"np-default whose label names another project than it admits", `
metadata: {name: np-default, namespace: shop, labels: {cattle.io/creator: norman, field.cattle.io/projectId: p-mcb29}}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-b6jcw}}}, {namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-7xq2n}}}]}]}`,
			"", `labelled cattle.io/creator: norman as Rancher's project isolation, but its label field.cattle.io/projectId="p-mcb29" is not the project it admits ("p-b6jcw"), as Rancher writes np-default`},
		{"hn-nodes opened to a whole range", `
metadata: {name: hn-nodes, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}`,
			"", "labelled cattle.io/creator: norman as Rancher's project isolation, but its sources are not single addresses (/32), as Rancher writes hn-nodes"},
		{"hp-<pod> selecting another pod", `
metadata: {name: hp-lb-0, namespace: ingress-nginx, labels: {cattle.io/creator: norman}}
spec: {podSelector: {matchLabels: {field.cattle.io/podName: other}}, ingress: [{ports: [{port: 80}]}]}`,
			"", "labelled cattle.io/creator: norman as Rancher's project isolation, but it does not select the pod lb-0 by the label field.cattle.io/podName, as Rancher writes hp-<pod>"},
		{"np-<service> with egress rules", `
metadata: {name: np-web, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{ports: [{port: 80}]}], egress: [{}]}`,
			"", "labelled cattle.io/creator: norman as Rancher's project isolation, but its policyTypes are [Ingress Egress], not [Ingress]"},
		{"a name Rancher never gives", `
metadata: {name: allow-everything, namespace: shop, labels: {cattle.io/creator: norman}}
spec: {podSelector: {}, ingress: [{}]}`,
			"", "labelled cattle.io/creator: norman as Rancher's project isolation, but its name is none of the names Rancher's isolation gives its policies (np-default, np-default-allow-all, hn-nodes, np-<service>, hp-<pod>)"},
	}
	for _, tt := range tests {
		got, ok := ClassifyPolicy(policy(t, tt.policy))
		if !ok || got.Role != tt.role || got.Description() != tt.description {
			t.Errorf("%s: %v %q %q\nwant %q %q", tt.name, ok, got.Role, got.Description(), tt.role, tt.description)
		}
		if !strings.HasPrefix(got.Title(), "Rancher's project isolation ("+got.Name) {
			t.Errorf("%s: title %q", tt.name, got.Title())
		}
	}
	// The same np-default without Rancher's label is the users' own.
	if _, ok := ClassifyPolicy(policy(t, `
metadata: {name: np-default, namespace: shop}
spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-b6jcw}}}, {namespaceSelector: {matchLabels: {field.cattle.io/projectId: p-7xq2n}}}]}]}`)); ok {
		t.Error("a policy without cattle.io/creator: norman taken for Rancher's")
	}
}

func TestRoleByName(t *testing.T) {
	norman := map[string]string{CreatorLabel: CreatorNorman}
	project := map[string]string{CreatorLabel: CreatorNorman, ProjectIDKey: "p-b6jcw"}
	tests := []struct {
		name   string
		labels map[string]string
		want   IsolationRole
	}{
		{"np-default", project, RoleProjectDefault},
		{"np-default", norman, RoleNodePorts}, // a Service named default
		{"np-default-allow-all", project, RoleSystemAllowAll},
		{"hn-nodes", norman, RoleHostNetwork},
		{"np-web", norman, RoleNodePorts},
		{"hp-lb-0", norman, RoleHostPorts},
		{"web-from-ingress", norman, ""},
		{"np-default", map[string]string{ProjectIDKey: "p-b6jcw"}, ""},
		{"hn-nodes", map[string]string{CreatorLabel: "someone"}, ""},
	}
	for _, tt := range tests {
		if got := RoleByName(tt.name, tt.labels); got != tt.want {
			t.Errorf("RoleByName(%s, %v) = %q, want %q", tt.name, tt.labels, got, tt.want)
		}
	}
}
