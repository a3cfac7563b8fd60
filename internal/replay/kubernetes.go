package replay

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// kubernetesPolicy reads a Kubernetes NetworkPolicy as Calico applies it
// (libcalico-go/lib/backend/k8s/conversion/conversion.go,
// K8sNetworkPolicyToCalico): a NetworkPolicy knp.default.<name> of the
// default tier at order 1000, whose pod selectors also require
// projectcalico.org/orchestrator == 'k8s', with one Allow rule per peer
// and protocol.
func kubernetesPolicy(u *unstructured.Unstructured) *policy {
	p := &policy{
		kind: kindKNP, namespace: u.GetNamespace(), name: "knp.default." + u.GetName(),
		tier: defaultTier.name, order: 1000,
	}
	var np networkingv1.NetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &np); err != nil {
		p.err = fmt.Errorf("%s: %w", p, err)
		return p
	}
	if err := p.fromKubernetes(np.Spec); err != nil {
		p.err = fmt.Errorf("%s: %w", p, err)
	}
	return p
}

func (p *policy) fromKubernetes(spec networkingv1.NetworkPolicySpec) error {
	sel, err := podSelector(&spec.PodSelector)
	if err != nil {
		return fmt.Errorf("podSelector: %w", err)
	}
	p.selects = and(sel, inNamespace(p.namespace))
	p.governs = kubernetesTypes(spec)
	for i, r := range spec.Ingress {
		rules, err := p.kubernetesRules(r.From, r.Ports, ingress)
		if err != nil {
			return fmt.Errorf("ingress rule %d: %w", i, err)
		}
		p.rules[ingress] = append(p.rules[ingress], rules...)
	}
	for i, r := range spec.Egress {
		rules, err := p.kubernetesRules(r.To, r.Ports, egress)
		if err != nil {
			return fmt.Errorf("egress rule %d: %w", i, err)
		}
		p.rules[egress] = append(p.rules[egress], rules...)
	}
	return nil
}

// kubernetesTypes are the policy's directions: policyTypes as the API
// server defaults them (Ingress, plus Egress when there are egress
// rules), which is also what a file without them means.
func kubernetesTypes(spec networkingv1.NetworkPolicySpec) [2]bool {
	var out [2]bool
	if len(spec.PolicyTypes) == 0 {
		return [2]bool{ingress: true, egress: len(spec.Egress) > 0}
	}
	for _, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			out[ingress] = true
		case networkingv1.PolicyTypeEgress:
			out[egress] = true
		}
	}
	return out
}

// kubernetesRules converts one rule: for each protocol among its ports
// and each peer, an Allow rule whose peer side is the peer and whose
// destination ports are the protocol's (none: every protocol and port).
func (p *policy) kubernetesRules(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, d direction) ([]rule, error) {
	byProtocol, err := kubernetesPorts(ports)
	if err != nil {
		return nil, err
	}
	peerEntities := []entity{{}}
	if len(peers) > 0 {
		peerEntities = nil
		for i := range peers {
			e, err := p.kubernetesPeer(&peers[i])
			if err != nil {
				return nil, fmt.Errorf("peer %d: %w", i, err)
			}
			peerEntities = append(peerEntities, e)
		}
	}
	var out []rule
	for _, pp := range byProtocol {
		for _, peer := range peerEntities {
			r := rule{action: actionAllow, protocol: pp.protocol}
			if d == ingress {
				r.src = peer
				r.dst.ports = pp.ports
			} else {
				r.dst = peer
				r.dst.ports = pp.ports
			}
			out = append(out, r)
		}
	}
	return out, nil
}

type protocolPorts struct {
	protocol *uint8 // nil: every protocol
	ports    portList
}

// kubernetesPorts groups a rule's ports by protocol (TCP when left out);
// a port entry without a port allows every port of its protocol, and no
// entries at all allow everything.
func kubernetesPorts(ports []networkingv1.NetworkPolicyPort) ([]protocolPorts, error) {
	if len(ports) == 0 {
		return []protocolPorts{{}}, nil
	}
	var order []uint8
	lists := map[uint8]*portList{}
	all := map[uint8]bool{}
	for _, port := range ports {
		name := "TCP"
		if port.Protocol != nil {
			name = string(*port.Protocol)
		}
		proto, err := protocolByName(name)
		if err != nil {
			return nil, err
		}
		if lists[proto] == nil {
			lists[proto] = &portList{}
			order = append(order, proto)
		}
		if port.Port == nil {
			all[proto] = true
			continue
		}
		text := port.Port.String()
		if port.EndPort != nil {
			text = fmt.Sprintf("%s:%d", text, *port.EndPort)
		}
		if err := lists[proto].add(text); err != nil {
			return nil, err
		}
	}
	slices.Sort(order)
	var out []protocolPorts
	for _, proto := range order {
		pp := protocolPorts{protocol: &proto}
		if !all[proto] {
			pp.ports = *lists[proto]
		}
		out = append(out, pp)
	}
	return out, nil
}

// kubernetesPeer converts a peer: an ipBlock to nets and notNets; else
// the pod selector (orchestrator k8s) and the namespace selector, scoped
// as an entity rule of a namespaced policy (an empty namespace selector
// means every namespace).
func (p *policy) kubernetesPeer(peer *networkingv1.NetworkPolicyPeer) (entity, error) {
	var out entity
	if b := peer.IPBlock; b != nil {
		n, err := parseNet(b.CIDR)
		if err != nil {
			return out, fmt.Errorf("ipBlock.cidr: %w", err)
		}
		out.nets = []netip.Prefix{n}
		if out.notNets, err = parseNets(b.Except); err != nil {
			return out, fmt.Errorf("ipBlock.except: %w", err)
		}
		return out, nil
	}
	pods, err := podSelector(peer.PodSelector)
	if err != nil {
		return out, fmt.Errorf("podSelector: %w", err)
	}
	var namespaces selector
	if peer.NamespaceSelector != nil {
		if namespaces, err = labelSelector(peer.NamespaceSelector); err != nil {
			return out, fmt.Errorf("namespaceSelector: %w", err)
		}
		if namespaces == nil {
			namespaces = allSel{}
		}
	}
	out.selector = scopeEntity(p.namespace, pods, namespaces, false)
	return out, nil
}

// podSelector is a pod selector as Calico converts it: the orchestrator
// label and the label selector's terms (a nil selector: the orchestrator
// label alone).
func podSelector(s *metav1.LabelSelector) (selector, error) {
	orchestrator := cmpSel{key: labelOrchestrator, op: "==", values: []string{"k8s"}}
	if s == nil {
		return orchestrator, nil
	}
	terms, err := labelSelector(s)
	if err != nil {
		return nil, err
	}
	return and(orchestrator, terms), nil
}

// labelSelector turns a Kubernetes label selector into a selector (nil
// when it has no terms).
func labelSelector(s *metav1.LabelSelector) (selector, error) {
	var terms []selector
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		terms = append(terms, cmpSel{key: k, op: "==", values: []string{s.MatchLabels[k]}})
	}
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			terms = append(terms, cmpSel{key: e.Key, op: "in", values: e.Values})
		case metav1.LabelSelectorOpNotIn:
			terms = append(terms, cmpSel{key: e.Key, op: "not in", values: e.Values})
		case metav1.LabelSelectorOpExists:
			terms = append(terms, hasSel{e.Key})
		case metav1.LabelSelectorOpDoesNotExist:
			terms = append(terms, notSel{hasSel{e.Key}})
		default:
			return nil, fmt.Errorf("operator %q", e.Operator)
		}
	}
	return and(terms...), nil
}
