package objects

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/calico"
)

// The defaults the API servers give a policy that leaves its direction
// out. A file holds objects as they were written, so the reader applies
// exactly what the server would have applied on the way in; objects
// listed from a cluster already carry them.

// calicoDefaultTypes returns the types Calico's v3 API gives a
// NetworkPolicy, GlobalNetworkPolicy or their staged kinds written
// without any (api/pkg/defaults/networkpolicy.go, defaultPolicyTypesField;
// from Calico 3.32 the same rule in the mutating admission policy
// api/admission/networkpolicy.mutatingadmissionpolicy.yaml): Ingress when
// there are no egress rules (with or without ingress rules), Egress alone
// with egress rules only, both with both. Rules present but empty count as
// none, as the Go defaulting reads them. crd.projectcalico.org/v1 objects
// written directly get no defaulting.
func calicoDefaultTypes(spec calico.GlobalNetworkPolicySpec) []calico.PolicyType {
	switch {
	case len(spec.Egress) == 0:
		return []calico.PolicyType{calico.Ingress}
	case len(spec.Ingress) == 0:
		return []calico.PolicyType{calico.Egress}
	}
	return []calico.PolicyType{calico.Ingress, calico.Egress}
}

// kubernetesDefaultPolicyTypes sets the policyTypes the Kubernetes API
// server gives a NetworkPolicy written without them: Ingress, plus Egress
// when it has egress rules (pkg/apis/networking/v1/defaults.go,
// SetDefaults_NetworkPolicy). Calico converts the defaulted object, so a
// file must be read the same way.
func kubernetesDefaultPolicyTypes(np *networkingv1.NetworkPolicy) {
	if len(np.Spec.PolicyTypes) > 0 {
		return
	}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(np.Spec.Egress) > 0 {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
}
