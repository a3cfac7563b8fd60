package calico

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KubernetesOrder is the order Calico gives every Kubernetes
// NetworkPolicy, in the default tier.
const KubernetesOrder = 1000.0

// KubernetesSpec converts a Kubernetes NetworkPolicy the way Calico does
// (libcalico-go/lib/backend/k8s/conversion/conversion.go,
// K8sNetworkPolicyToCalico), into the spec of the Calico NetworkPolicy of
// the policy's namespace it stands for:
//
//   - default tier, order 1000; the pod selector becomes
//     projectcalico.org/orchestrator == 'k8s' && <matchLabels and
//     matchExpressions>, scoped to the policy's namespace;
//   - each Kubernetes rule becomes one Calico rule per protocol (sorted by
//     name, "" for no ports first) and, inside that, one per peer, in the
//     peers' order; a rule's ports are every port of that protocol, a port
//     without protocol is TCP, a port without number means all ports of its
//     protocol, endPort makes a range, a named port stays a name;
//   - a podSelector peer selects pods (orchestrator k8s) in the policy's
//     namespace, a namespaceSelector peer namespaces ({} means all), an
//     ipBlock becomes nets with its except list as notNets;
//   - policyTypes as given; Ingress alone when none are given.
//
// A rule Calico cannot convert is dropped, as Calico drops it; the
// returned notes say which.
func KubernetesSpec(np *networkingv1.NetworkPolicy) (GlobalNetworkPolicySpec, []string) {
	order := KubernetesOrder
	var p struct{ Spec GlobalNetworkPolicySpec }
	p.Spec.Order = &order
	p.Spec.Selector = labelSelector(&np.Spec.PodSelector, true).String()
	var notes []string
	for i, r := range np.Spec.Ingress {
		rules, err := kubernetesRules(r.From, r.Ports, true)
		if err != nil {
			notes = append(notes, fmt.Sprintf("NetworkPolicy %s/%s: spec.ingress[%d] dropped, as Calico drops it: %v", np.Namespace, np.Name, i, err))
			continue
		}
		p.Spec.Ingress = append(p.Spec.Ingress, rules...)
	}
	for i, r := range np.Spec.Egress {
		rules, err := kubernetesRules(r.To, r.Ports, false)
		if err != nil {
			notes = append(notes, fmt.Sprintf("NetworkPolicy %s/%s: spec.egress[%d] dropped, as Calico drops it: %v", np.Namespace, np.Name, i, err))
			continue
		}
		p.Spec.Egress = append(p.Spec.Egress, rules...)
	}
	var ingress, egress bool
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	if ingress || !egress {
		p.Spec.Types = append(p.Spec.Types, Ingress)
	}
	if egress {
		p.Spec.Types = append(p.Spec.Types, Egress)
	}
	return p.Spec, notes
}

// kubernetesRules converts one Kubernetes rule.
func kubernetesRules(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ingress bool) ([]Rule, error) {
	// Ports by protocol; a nil list means every port of the protocol, and
	// the protocol "" (no ports at all) means any protocol.
	byProtocol := map[string][]Port{}
	if len(ports) == 0 {
		byProtocol[""] = nil
	}
	for _, kp := range ports {
		protocol := string(corev1.ProtocolTCP)
		if kp.Protocol != nil {
			protocol = string(*kp.Protocol)
		}
		port, all, err := kubernetesPort(kp)
		if err != nil {
			return nil, err
		}
		existing, seen := byProtocol[protocol]
		switch {
		case all:
			byProtocol[protocol] = nil
		case !seen || len(existing) > 0:
			byProtocol[protocol] = append(existing, port)
		}
	}
	protocols := make([]string, 0, len(byProtocol))
	for p := range byProtocol {
		protocols = append(protocols, p)
	}
	slices.Sort(protocols)

	var out []Rule
	for _, protocol := range protocols {
		byProtocol[protocol] = simplifyPorts(byProtocol[protocol])
		var proto *Protocol
		if protocol != "" {
			proto = ProtocolFor(Protocol{Name: protocol})
		}
		entities, err := kubernetesPeers(peers)
		if err != nil {
			return nil, err
		}
		for _, peer := range entities {
			r := Rule{Action: Allow, Protocol: proto}
			if ingress {
				r.Source = peer
				r.Destination = EntityRule{Ports: byProtocol[protocol]}
			} else {
				peer.Ports = byProtocol[protocol]
				r.Destination = peer
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// kubernetesPort converts a port; all is true for a port without number.
func kubernetesPort(kp networkingv1.NetworkPolicyPort) (Port, bool, error) {
	if kp.Port == nil {
		return Port{}, true, nil
	}
	text := kp.Port.String()
	if kp.EndPort != nil {
		text = fmt.Sprintf("%s:%d", text, *kp.EndPort)
	}
	p, err := ParsePort(text)
	if err != nil {
		return p, false, fmt.Errorf("invalid port %q: %w", text, err)
	}
	if p.Name == "" && p.Min > p.Max {
		return p, false, fmt.Errorf("invalid port range %q", text)
	}
	return p, false, nil
}

// kubernetesPeers converts the peers of a rule; no peers is one entity
// that matches anything.
func kubernetesPeers(peers []networkingv1.NetworkPolicyPeer) ([]EntityRule, error) {
	if len(peers) == 0 {
		return []EntityRule{{}}, nil
	}
	out := make([]EntityRule, 0, len(peers))
	for _, peer := range peers {
		var e EntityRule
		if peer.IPBlock != nil {
			cidr, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil {
				return nil, fmt.Errorf("ipBlock.cidr %q: %w", peer.IPBlock.CIDR, err)
			}
			e.Nets = []string{cidr.Masked().String()}
			for _, except := range peer.IPBlock.Except {
				p, err := netip.ParsePrefix(except)
				if err != nil {
					return nil, fmt.Errorf("ipBlock.except %q: %w", except, err)
				}
				e.NotNets = append(e.NotNets, p.Masked().String())
			}
			out = append(out, e)
			continue
		}
		e.Selector = labelSelector(peer.PodSelector, true).String()
		if peer.NamespaceSelector != nil {
			e.NamespaceSelector = labelSelector(peer.NamespaceSelector, false).String()
		}
		out = append(out, e)
	}
	return out, nil
}

// labelSelector converts a Kubernetes label selector as Calico's
// k8sSelectorToCalico does: pod selectors also require the orchestrator
// label; an empty namespace selector is all().
func labelSelector(s *metav1.LabelSelector, pods bool) Selector {
	var terms []Selector
	if pods {
		terms = append(terms, Eq(OrchestratorLabel, "k8s"))
	}
	if s != nil {
		if len(s.MatchLabels) > 0 {
			terms = append(terms, MatchLabels(s.MatchLabels))
		}
		for _, e := range s.MatchExpressions {
			switch e.Operator {
			case metav1.LabelSelectorOpIn:
				terms = append(terms, In(e.Key, e.Values...))
			case metav1.LabelSelectorOpNotIn:
				terms = append(terms, NotIn(e.Key, e.Values...))
			case metav1.LabelSelectorOpExists:
				terms = append(terms, Has(e.Key))
			case metav1.LabelSelectorOpDoesNotExist:
				terms = append(terms, Not(Has(e.Key)))
			}
		}
	}
	if len(terms) == 0 {
		return All()
	}
	return And(terms...)
}

// simplifyPorts orders ports as Calico's SimplifyPorts does: names first,
// in their order, then numbers merged into sorted ranges; a list with at
// most one number stays as it is.
func simplifyPorts(ports []Port) []Port {
	var names []Port
	var numbers []int
	for _, p := range ports {
		if p.Name != "" {
			names = append(names, p)
			continue
		}
		for n := int(p.Min); n <= int(p.Max); n++ {
			numbers = append(numbers, n)
		}
	}
	if len(numbers) <= 1 {
		return ports
	}
	slices.Sort(numbers)
	out := names
	for i := 0; i < len(numbers); {
		j := i
		for j+1 < len(numbers) && numbers[j+1] <= numbers[j]+1 {
			j++
		}
		out = append(out, Port{Min: uint16(numbers[i]), Max: uint16(numbers[j])})
		i = j + 1
	}
	return out
}
