package policies

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
)

func rancherPolicy(ns, name string, podLabels map[string]string, from []networkingv1.NetworkPolicyPeer, port int) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"cattle.io/creator": "norman"}},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: podLabels}},
	}
	rule := networkingv1.NetworkPolicyIngressRule{From: from}
	if port > 0 {
		p := intstr.FromInt(port)
		rule.Ports = []networkingv1.NetworkPolicyPort{{Port: &p}}
	}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{rule}
	return np
}

// A namespace's Rancher policies are copied into one default-tier policy
// that selects the same pods and pins each rule to its own policy's pods.
func TestHandoverCopiesRancherPolicies(t *testing.T) {
	project := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"field.cattle.io/projectId": "p-a"}}}}
	snap := Snapshot{
		Namespaces: []Namespace{{Name: "shop", Labels: map[string]string{"field.cattle.io/projectId": "p-a"}, Annotations: map[string]string{"field.cattle.io/projectId": "c:p-a"}}},
		RancherPolicies: []*networkingv1.NetworkPolicy{
			rancherPolicy("shop", "np-default", nil, project, 0),
			rancherPolicy("shop", "hp-web", map[string]string{"field.cattle.io/podName": "web"}, nil, 8080),
		},
		CalicoVersion: calico.Version{Major: 3, Minor: 30},
	}
	for _, mode := range []string{config.EnforcementDefaultTier, config.EnforcementTier} {
		cfg := config.Default()
		cfg.Enforcement = mode
		d := Generate(snap, cfg)
		var copies []calico.Policy
		for _, p := range d.Policies {
			if p.Class == calico.ClassHandover {
				copies = append(copies, p)
			}
		}
		if len(copies) != 1 {
			t.Fatalf("%s: %d copies, want 1: %v", mode, len(copies), copies)
		}
		c := copies[0]
		if c.Name != "pni-rancher-shop" || c.Spec.Tier != "" || *c.Spec.Order != calico.KubernetesOrder || c.Spec.NamespaceSelector != "projectcalico.org/name == 'shop'" {
			t.Errorf("%s: copy %s in tier %q at order %v selecting %q", mode, c.Name, c.Spec.Tier, *c.Spec.Order, c.Spec.NamespaceSelector)
		}
		if !strings.Contains(c.Spec.Selector, "field.cattle.io/podName == 'web'") || !strings.Contains(c.Spec.Selector, " || ") {
			t.Errorf("%s: selector %q must join both policies' pods", mode, c.Spec.Selector)
		}
		if len(c.Spec.Ingress) != 2 {
			t.Fatalf("%s: rules %+v", mode, c.Spec.Ingress)
		}
		for _, r := range c.Spec.Ingress {
			if r.Destination.NamespaceSelector != "projectcalico.org/name == 'shop'" || r.Destination.Selector == "" {
				t.Errorf("%s: rule %+v is not pinned to its policy's pods", mode, r)
			}
		}
		if got := nsStatus(t, d, "shop").Rancher; strings.Join(got, ",") != "hp-web,np-default" {
			t.Errorf("%s: status names %v", mode, got)
		}
		if d.RancherNamespaces != 1 {
			t.Errorf("%s: %d namespaces with Rancher's isolation", mode, d.RancherNamespaces)
		}
	}
}

// Joining selectors is stable: a join joined with one of its parts is
// the join again, whatever the order.
func TestOrSelectorsIsStable(t *testing.T) {
	ab := OrSelectors([]string{"b == 'x'", "a == 'y'"})
	if again := OrSelectors([]string{ab, "a == 'y'"}); again != ab {
		t.Errorf("%q joined with a part gave %q", ab, again)
	}
	if one := OrSelectors([]string{"a == 'y' && c == 'z'"}); one != "a == 'y' && c == 'z'" {
		t.Errorf("one selector became %q", one)
	}
}

func nsStatus(t *testing.T, d Desired, name string) Status {
	t.Helper()
	for _, n := range d.Namespaces {
		if n.Name == name {
			return n.Status
		}
	}
	t.Fatalf("no namespace %s", name)
	return Status{}
}
