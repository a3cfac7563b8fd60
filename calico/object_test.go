package calico

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestStoredNameByVersion(t *testing.T) {
	tests := []struct {
		api  API
		want string
	}{
		{API{Group: GroupV1, Version: Version{3, 28}}, "default.pni-deny-ingress"},
		{API{Group: GroupV1, Version: Version{3, 31}}, "default.pni-deny-ingress"},
		{API{Group: GroupV1, Version: Version{3, 32}}, "pni-deny-ingress"},
		{API{Group: GroupV1, Version: Version{4, 0}}, "pni-deny-ingress"},
		{API{Group: GroupV3, Version: Version{3, 28}}, "pni-deny-ingress"},
	}
	for _, tt := range tests {
		got := tt.api.StoredName("pni-deny-ingress")
		if got != tt.want {
			t.Errorf("%s %s: StoredName = %q, want %q", tt.api.Group, tt.api.Version, got, tt.want)
		}
		if back := tt.api.PolicyName(got); back != "pni-deny-ingress" {
			t.Errorf("%s %s: PolicyName(%q) = %q", tt.api.Group, tt.api.Version, got, back)
		}
	}
}

func TestParseVersion(t *testing.T) {
	good := map[string]Version{"v3.28.5": {3, 28}, "3.29": {3, 29}, "v3.30.0-0.dev-123": {3, 30}, " v3.32.1 ": {3, 32}}
	for in, want := range good {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "v3", "latest", "v3.x.1"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", in)
		}
	}
}

func TestObjectRendersCalicoJSON(t *testing.T) {
	p := validPolicy()
	p.Description = "lets isolated pods reach the Kubernetes API"
	u := API{Group: GroupV1, Version: Version{3, 28}}.Object(p)
	got, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"crd.projectcalico.org/v1","kind":"GlobalNetworkPolicy","metadata":{"annotations":{"calico-pni.io/description":"lets isolated pods reach the Kubernetes API"},"labels":{"app.kubernetes.io/managed-by":"calico-pni","calico-pni.io/class":"allow"},"name":"default.pni-allow-kube-api"},"spec":{"egress":[{"action":"Allow","destination":{"nets":["10.0.0.1/32"],"ports":[6443]},"protocol":"TCP"}],"namespaceSelector":"calico-pni.io/isolated == 'true'","order":2000,"types":["Egress"]}}`
	if string(got) != want {
		t.Errorf("Object =\n%s\nwant\n%s", got, want)
	}

	ns := validPolicy()
	ns.Namespace = "team-a"
	ns.Spec.NamespaceSelector = ""
	ns.Spec.Selector = "all()"
	u = API{Group: GroupV3}.Object(ns)
	if u.GetKind() != "NetworkPolicy" || u.GetNamespace() != "team-a" || u.GetAPIVersion() != "projectcalico.org/v3" || u.GetName() != "pni-allow-kube-api" {
		t.Errorf("namespaced object: kind %s, namespace %s, apiVersion %s, name %s", u.GetKind(), u.GetNamespace(), u.GetAPIVersion(), u.GetName())
	}
	if _, found, _ := unstructured.NestedString(u.Object, "spec", "namespaceSelector"); found {
		t.Error("a NetworkPolicy was rendered with a namespaceSelector")
	}
}

func TestSpecOfAndSpecEqual(t *testing.T) {
	p := validPolicy()
	u := API{Group: GroupV3}.Object(p)
	// What a server hands back: tier defaulted, the port as a string.
	u.Object["spec"].(map[string]any)["tier"] = "default"
	rules := u.Object["spec"].(map[string]any)["egress"].([]any)
	rules[0].(map[string]any)["destination"].(map[string]any)["ports"] = []any{"6443"}
	got, err := SpecOf(u)
	if err != nil {
		t.Fatal(err)
	}
	if !SpecEqual(got, p.Spec) {
		t.Errorf("SpecEqual = false for the same policy read back:\n%s\n%s", canonical(got), canonical(p.Spec))
	}
	got.Egress[0].Destination.Ports = []Port{PortNumber(443)}
	if SpecEqual(got, p.Spec) {
		t.Error("SpecEqual = true after the port changed")
	}
	u.Object["spec"].(map[string]any)["order"] = "first"
	if _, err := SpecOf(u); err == nil {
		t.Error("SpecOf accepted a string order")
	}
}

func TestPortAndProtocolJSON(t *testing.T) {
	var ports []Port
	if err := json.Unmarshal([]byte(`[80, "443", "8000:8080", "http"]`), &ports); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ports)
	if string(b) != `[80,443,"8000:8080","http"]` {
		t.Errorf("ports = %s", b)
	}
	for _, bad := range []string{`[-1]`, `[70000]`, `["1:x"]`, `["99999"]`, `[""]`, `[true]`} {
		if err := json.Unmarshal([]byte(bad), &ports); err == nil {
			t.Errorf("ports %s accepted", bad)
		}
	}
	var protos []Protocol
	if err := json.Unmarshal([]byte(`["TCP", 17, "SCTP", "ICMP"]`), &protos); err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, false}
	for i, p := range protos {
		if p.SupportsPorts() != want[i] {
			t.Errorf("%s.SupportsPorts() = %v", p, p.SupportsPorts())
		}
	}
	b, _ = json.Marshal(protos)
	if string(b) != `["TCP",17,"SCTP","ICMP"]` {
		t.Errorf("protocols = %s", b)
	}
}
