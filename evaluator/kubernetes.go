package evaluator

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/calico"
)

// FromKubernetes converts a Kubernetes NetworkPolicy the way Calico does
// (calico.KubernetesSpec), so that its rules have the indices Calico's
// flow logs report. A rule Calico cannot convert is dropped, as Calico
// drops it; the returned notes say which.
func FromKubernetes(np *networkingv1.NetworkPolicy) (Policy, []string) {
	p := Policy{Kind: KubernetesNetworkPolicy, Namespace: np.Namespace, Name: np.Name}
	p.Labels = np.Labels
	var notes []string
	p.Spec, notes = calico.KubernetesSpec(np)
	return p, notes
}
