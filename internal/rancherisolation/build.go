// Package rancherisolation builds, as test data, what Rancher's own
// project network isolation writes into a cluster: its Kubernetes
// NetworkPolicies, field for field as the controllers of rancher/rancher
// pkg/controllers/managementuser/networkpolicy/ build them, and the label
// it puts on pods with host ports. Tests, the demo and the fixture
// testdata/article-rancher-isolation.yaml use it to put calico-pni beside
// Rancher's isolation, as on a cluster that takes over from it.
//
// It models the state Rancher's controllers converge to for the objects
// given, not the order or timing of their writes. Each rule names the
// Rancher source file and function it follows.
package rancherisolation

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-pni/calico-pni/rancher"
)

// Calico's node annotations Rancher reads for hn-nodes (netpol.go,
// calicoIPIPTunnelAddrAnno, calicoVXLANTunnelAddrAnno).
const (
	ipipTunnelAnnotation  = "projectcalico.org/IPv4IPIPTunnelAddr"
	vxlanTunnelAnnotation = "projectcalico.org/IPv4VXLANTunnelAddr"
)

// Cluster is what Rancher's controllers read.
type Cluster struct {
	Namespaces []corev1.Namespace
	Nodes      []corev1.Node
	Services   []corev1.Service
	Pods       []corev1.Pod
	// NetworkPolicies are the users' own: a System-project namespace
	// that has one gets no np-default-allow-all.
	NetworkPolicies []networkingv1.NetworkPolicy
	// SystemProject is the ID of the Project labelled
	// authz.management.cattle.io/system-project=true in Rancher's
	// management cluster (netpol.go, getSystemNSInfo).
	SystemProject string
	// CalicoCNI says that Rancher knows the cluster's CNI is Calico: an
	// RKE2 cluster it provisioned with cni: calico, or an imported RKE2
	// cluster whose first node has Calico's address annotation
	// (netpol.go, getClusterCNI). Only then does hn-nodes hold Calico's
	// tunnel addresses; otherwise the first address of each node's pod
	// CIDR (rancher#33979, #38490).
	CalicoCNI bool
}

// Result is what Rancher writes.
type Result struct {
	// Policies are Rancher's NetworkPolicies, by namespace and name.
	Policies []networkingv1.NetworkPolicy
	// PodLabels are the labels Rancher adds to pods, by "namespace/pod".
	PodLabels map[string]map[string]string
}

// Build returns what Rancher's isolation writes for c once its
// controllers have run.
func Build(c Cluster) (Result, error) {
	if c.SystemProject == "" {
		// getSystemNSInfo fails without a System project, and every
		// handler stops there.
		return Result{}, errors.New("Rancher's isolation writes nothing without a System project: give its ID")
	}
	b := builder{c: c, system: map[string]bool{}, annotated: map[string]bool{}, out: Result{PodLabels: map[string]map[string]string{}}}
	for _, ns := range c.Namespaces {
		// Rancher places namespaces in projects by the label, not by the
		// guarded annotation (nslabels.ProjectIDFieldLabel everywhere).
		if ns.Labels[rancher.ProjectIDKey] == c.SystemProject {
			b.system[ns.Name] = true
		}
		// isNamespaceMoved (utils.go): the Service and pod handlers skip a
		// namespace without the project annotation.
		if ns.Annotations[rancher.ProjectIDKey] != "" {
			b.annotated[ns.Name] = true
		}
	}
	b.projectPolicies()
	if err := b.hostNetwork(); err != nil {
		return Result{}, err
	}
	for i := range c.Services {
		b.nodePorts(&c.Services[i])
	}
	for i := range c.Pods {
		b.hostPorts(&c.Pods[i])
	}
	slices.SortFunc(b.out.Policies, func(x, y networkingv1.NetworkPolicy) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return b.out, nil
}

type builder struct {
	c Cluster
	// system holds the System project's namespaces, annotated the
	// namespaces with Rancher's project annotation.
	system, annotated map[string]bool
	out               Result
}

func labels(kv ...string) map[string]string {
	m := map[string]string{rancher.CreatorLabel: rancher.CreatorNorman}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// owner is the owner reference Rancher sets, when the owner has a UID:
// objects read from a file have none, and the API server refuses an
// owner reference without one.
func owner(kind, name string, uid types.UID) []metav1.OwnerReference {
	if uid == "" {
		return nil
	}
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: kind, Name: name, UID: uid}}
}

func terminating(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating
}

// projectPolicies follows nssyncer.go (Sync calls programNetworkPolicy
// for the project of every namespace with a project label) and netpol.go
// (programNetworkPolicy): each namespace of the System project gets
// np-default-allow-all unless a policy of its users is there; each other
// namespace with a project label gets np-default for that project.
func (b *builder) projectPolicies() {
	users := map[string]bool{}
	for _, np := range b.c.NetworkPolicies {
		if !rancher.IsRancherPolicy(np.Labels) {
			users[np.Namespace] = true
		}
	}
	for i := range b.c.Namespaces {
		ns := &b.c.Namespaces[i]
		project := ns.Labels[rancher.ProjectIDKey]
		switch {
		case project == "":
		case b.system[ns.Name]:
			if !users[ns.Name] {
				b.add(allowAll(ns.Name, b.c.SystemProject))
			}
		case ns.DeletionTimestamp == nil:
			b.add(projectDefault(ns.Name, project, b.c.SystemProject))
		}
	}
}

// projectDefault is generateDefaultNamespaceNetworkPolicy (netpol.go).
func projectDefault(namespace, project, system string) networkingv1.NetworkPolicy {
	peer := func(id string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{rancher.ProjectIDKey: id}}}
	}
	return networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: string(rancher.RoleProjectDefault), Namespace: namespace, Labels: labels(rancher.ProjectIDKey, project)},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{peer(project), peer(system)}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
}

// allowAll is generateAllowAllNetworkPolicy (netpol.go), written for CIS
// scans (rancher#30211).
func allowAll(namespace, system string) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: string(rancher.RoleSystemAllowAll), Namespace: namespace, Labels: labels(rancher.ProjectIDKey, system)},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}

// hostNetwork follows handleHostNetwork (netpol.go): one /32 per node,
// sorted as text; no policy at all when there is none (an empty from
// would admit everything, rancher#14085); hn-nodes in every namespace
// with a project label outside the System project.
func (b *builder) hostNetwork() error {
	var from []networkingv1.NetworkPolicyPeer
	for _, n := range b.c.Nodes {
		addr, err := b.hostAddress(&n)
		if err != nil {
			return err
		}
		if addr != "" {
			from = append(from, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: addr + "/32"}})
		}
	}
	if len(from) == 0 {
		return nil
	}
	sort.Slice(from, func(i, j int) bool { return from[i].IPBlock.CIDR < from[j].IPBlock.CIDR })
	for i := range b.c.Namespaces {
		ns := &b.c.Namespaces[i]
		if ns.Labels[rancher.ProjectIDKey] == "" || b.system[ns.Name] || terminating(ns) {
			continue
		}
		b.add(networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: string(rancher.RoleHostNetwork), Namespace: ns.Name, Labels: labels(),
				OwnerReferences: owner("Namespace", ns.Name, ns.UID)},
			Spec: networkingv1.NetworkPolicySpec{
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: slices.Clone(from)}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		})
	}
	return nil
}

// hostAddress is a node's address in hn-nodes: with Calico, its IPIP
// tunnel address if the annotation is there (even empty: Rancher then
// skips the node), else its VXLAN one; otherwise the first address of
// spec.podCIDR. A node without one is skipped, as Rancher logs and skips
// it.
func (b *builder) hostAddress(n *corev1.Node) (string, error) {
	if b.c.CalicoCNI {
		addr, ok := n.Annotations[ipipTunnelAnnotation]
		if !ok {
			addr = n.Annotations[vxlanTunnelAnnotation]
		}
		return addr, nil
	}
	if n.Spec.PodCIDR == "" {
		return "", nil
	}
	ip, _, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return "", fmt.Errorf("node %s: spec.podCIDR %q: %w", n.Name, n.Spec.PodCIDR, err)
	}
	return ip.String(), nil
}

// nodePorts follows servicehandler.go (Sync, nodePortsUpdateHandler,
// generateServiceNetworkPolicy): for a Service with node ports outside
// the System project, in a namespace with Rancher's project annotation,
// ingress from anywhere to the target port of each port that has a node
// port, with the Service's selector. Rancher sets no policyTypes.
func (b *builder) nodePorts(svc *corev1.Service) {
	if svc.DeletionTimestamp != nil || !b.annotated[svc.Namespace] || b.system[svc.Namespace] {
		return
	}
	var ports []networkingv1.NetworkPolicyPort
	for _, p := range svc.Spec.Ports {
		if !hasNodePort(svc, p) {
			continue
		}
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port) // the API server's default
		}
		ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: protocol(p.Protocol), Port: &target})
	}
	if len(ports) == 0 {
		return
	}
	sortPorts(ports)
	name := "np-" + svc.Name
	b.add(networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: svc.Namespace, Labels: labels(), OwnerReferences: owner("Service", svc.Name, svc.UID)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: svc.Spec.Selector},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: ports}},
		},
	})
}

// hasNodePort reports whether the API server gives the port a node port:
// Rancher tests spec.ports[].nodePort, which the API server fills for
// NodePort Services and for LoadBalancer Services unless
// allocateLoadBalancerNodePorts is false. A Service read from a file may
// omit the number it was given.
func hasNodePort(svc *corev1.Service, p corev1.ServicePort) bool {
	switch {
	case p.NodePort != 0:
		return true
	case svc.Spec.Type == corev1.ServiceTypeNodePort:
		return true
	case svc.Spec.Type == corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// hostPorts follows podhandler.go (Sync, addLabelIfHostPortsPresent,
// hostPortsUpdateHandler, generatePodNetworkPolicy): a pod with host
// ports in its containers (not its init containers), in a namespace with
// Rancher's project annotation outside the System project, gets the label
// field.cattle.io/podName=<pod> and hp-<pod>: ingress from anywhere to
// the container port of each host port.
func (b *builder) hostPorts(pod *corev1.Pod) {
	if pod.DeletionTimestamp != nil || !b.annotated[pod.Namespace] {
		return
	}
	var ports []networkingv1.NetworkPolicyPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				port := intstr.FromInt32(p.ContainerPort)
				ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: protocol(p.Protocol), Port: &port})
			}
		}
	}
	// addLabelIfHostPortsPresent skips System-project pods only when they
	// have labels: a System-project pod without any gets the label, and
	// hostPortsUpdateHandler then writes no policy for it.
	if len(ports) > 0 && (pod.Labels == nil || !b.system[pod.Namespace]) {
		b.out.PodLabels[pod.Namespace+"/"+pod.Name] = map[string]string{rancher.PodNameLabel: pod.Name}
	}
	if len(ports) == 0 || b.system[pod.Namespace] {
		return
	}
	sortPorts(ports)
	b.add(networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "hp-" + pod.Name, Namespace: pod.Namespace, Labels: labels(), OwnerReferences: owner("Pod", pod.Name, pod.UID)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{rancher.PodNameLabel: pod.Name}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: ports}},
		},
	})
}

// protocol is the port's protocol as the API server defaults it.
func protocol(p corev1.Protocol) *corev1.Protocol {
	if p == "" {
		p = corev1.ProtocolTCP
	}
	return &p
}

// sortPorts orders ports as Rancher does (portToString, netpol.go): by the
// text of the port ("443" before "80"). Rancher's key ends in the address
// of the protocol, not its value, so ties fall in no fixed order; here
// they fall by protocol.
func sortPorts(ports []networkingv1.NetworkPolicyPort) {
	sort.SliceStable(ports, func(i, j int) bool {
		a, b := ports[i].Port.String(), ports[j].Port.String()
		if a != b {
			return a < b
		}
		return strings.Compare(string(*ports[i].Protocol), string(*ports[j].Protocol)) < 0
	})
}

func (b *builder) add(np networkingv1.NetworkPolicy) {
	b.out.Policies = append(b.out.Policies, np)
}
