package rancher

import (
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rancher's own project network isolation (the cluster setting
// enableNetworkPolicy) writes Kubernetes NetworkPolicies, each labelled
// cattle.io/creator: norman, from the controllers in rancher/rancher
// pkg/controllers/managementuser/networkpolicy/. Switching it off deletes
// every NetworkPolicy with that label (clusterHandler.go,
// deleteNetworkPolicies). calico-pni recognises them, to name them in
// explain and matrix, to leave them out of a preview of the cluster once
// they are gone, and to tell which of them open calico-pni's walls.
const (
	// CreatorLabel and CreatorNorman mark every policy Rancher's isolation
	// writes (netpol.go: creatorLabel, creatorNorman).
	CreatorLabel  = "cattle.io/creator"
	CreatorNorman = "norman"
	// PodNameLabel is the label Rancher puts on each pod with host ports
	// so that its hp-<pod> policy can select it (podhandler.go,
	// PodNameFieldLabel).
	PodNameLabel = "field.cattle.io/podName"
)

// IsRancherPolicy reports whether a NetworkPolicy's labels mark it as
// written by Rancher's project network isolation.
func IsRancherPolicy(labels map[string]string) bool {
	return labels[CreatorLabel] == CreatorNorman
}

// IsolationRole is what a policy of Rancher's isolation is for, named as
// Rancher names the policy.
type IsolationRole string

// The policies Rancher's isolation writes.
const (
	// RoleProjectDefault, np-default: in each namespace of a user project,
	// ingress from the namespaces of the same project and of the System
	// project (netpol.go, generateDefaultNamespaceNetworkPolicy).
	RoleProjectDefault IsolationRole = "np-default"
	// RoleSystemAllowAll, np-default-allow-all: in each namespace of the
	// System project without a policy of its users, every ingress and
	// egress allowed (netpol.go, generateAllowAllNetworkPolicy).
	RoleSystemAllowAll IsolationRole = "np-default-allow-all"
	// RoleHostNetwork, hn-nodes: in each namespace of a user project,
	// ingress from each node's host-network address (netpol.go,
	// handleHostNetwork).
	RoleHostNetwork IsolationRole = "hn-nodes"
	// RoleNodePorts, np-<service>: ingress from anywhere to the target
	// ports of a NodePort or LoadBalancer Service (servicehandler.go).
	RoleNodePorts IsolationRole = "np-<service>"
	// RoleHostPorts, hp-<pod>: ingress from anywhere to a pod's host
	// ports (podhandler.go).
	RoleHostPorts IsolationRole = "hp-<pod>"
)

// IsolationPolicy is a NetworkPolicy of Rancher's isolation, as
// ClassifyPolicy read it.
type IsolationPolicy struct {
	Namespace, Name string
	// Role is what the policy is for; empty when the policy carries
	// Rancher's label but none of the shapes Rancher writes (Unexpected
	// says why).
	Role IsolationRole
	// Project and SystemProject are the projects np-default admits, by
	// Rancher's (unguarded) namespace label; SystemProject also for
	// np-default-allow-all, from its label.
	Project, SystemProject string
	// Target names the Service of np-<service> or the pod of hp-<pod>.
	Target string
	// Ports are the ports np-<service> and hp-<pod> open ("TCP 8080").
	Ports []string
	// Sources are the CIDRs hn-nodes admits.
	Sources []string
	// Unexpected says how a policy with Rancher's label differs from
	// what Rancher writes.
	Unexpected string
}

// ClassifyPolicy tells whether np is a policy of Rancher's isolation
// (its label) and which, by its name and shape, each checked against
// what Rancher's controllers build. A policy with the label whose name
// and shape match none of them is still Rancher's, with Unexpected set:
// someone edited it, or a Rancher version this does not know wrote it.
func ClassifyPolicy(np *networkingv1.NetworkPolicy) (IsolationPolicy, bool) {
	if !IsRancherPolicy(np.Labels) {
		return IsolationPolicy{}, false
	}
	p := IsolationPolicy{Namespace: np.Namespace, Name: np.Name}
	var err error
	switch {
	case np.Name == string(RoleHostNetwork):
		p.Role, err = RoleHostNetwork, p.readHostNetwork(np)
	case np.Name == string(RoleSystemAllowAll):
		p.Role, err = RoleSystemAllowAll, p.readAllowAll(np)
	case strings.HasPrefix(np.Name, "hp-"):
		p.Role, err = RoleHostPorts, p.readHostPorts(np)
	case np.Name == string(RoleProjectDefault) && !opensPorts(np):
		p.Role, err = RoleProjectDefault, p.readProjectDefault(np)
	case strings.HasPrefix(np.Name, "np-"):
		// np-default is also the name Rancher gives the policy of a
		// Service named "default": its shape tells them apart.
		p.Role, err = RoleNodePorts, p.readNodePorts(np)
	default:
		err = fmt.Errorf("its name is none of the names Rancher's isolation gives its policies (np-default, np-default-allow-all, hn-nodes, np-<service>, hp-<pod>)")
	}
	if err != nil {
		p.Role, p.Unexpected = "", err.Error()
	}
	return p, true
}

// opensPorts reports whether np's only ingress rule names ports and no
// source: the shape of np-<service> and hp-<pod>.
func opensPorts(np *networkingv1.NetworkPolicy) bool {
	return len(np.Spec.Ingress) == 1 && len(np.Spec.Ingress[0].From) == 0 && len(np.Spec.Ingress[0].Ports) > 0
}

// ingressOnly checks the policy types Rancher sets, or that the API
// server defaults to when Rancher sets none (np-<service>, hp-<pod>).
func ingressOnly(np *networkingv1.NetworkPolicy, mayBeUnset bool) error {
	t := np.Spec.PolicyTypes
	if (len(t) == 0 && mayBeUnset) || slices.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		if len(np.Spec.Egress) > 0 {
			return fmt.Errorf("it has egress rules, which Rancher never writes in it")
		}
		return nil
	}
	return fmt.Errorf("its policyTypes are %v, not [Ingress]", t)
}

func emptySelector(s metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// projectSelector returns the project a peer selects by Rancher's label
// alone, as np-default's peers do.
func projectSelector(peer networkingv1.NetworkPolicyPeer) (string, bool) {
	s := peer.NamespaceSelector
	if s == nil || peer.PodSelector != nil || peer.IPBlock != nil || len(s.MatchExpressions) > 0 || len(s.MatchLabels) != 1 {
		return "", false
	}
	id, ok := s.MatchLabels[ProjectIDKey]
	return id, ok
}

// readProjectDefault: every pod of the namespace, one ingress rule without
// ports from two namespace selectors on field.cattle.io/projectId, the
// project's and the System project's; the policy labelled with the
// project (netpol.go, generateDefaultNamespaceNetworkPolicy).
func (p *IsolationPolicy) readProjectDefault(np *networkingv1.NetworkPolicy) error {
	if !emptySelector(np.Spec.PodSelector) {
		return fmt.Errorf("it selects some pods only, where Rancher's np-default selects every pod of its namespace")
	}
	if err := ingressOnly(np, false); err != nil {
		return err
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) > 0 || len(np.Spec.Ingress[0].From) != 2 {
		return fmt.Errorf("its ingress is not one rule from two namespace selectors on every port, as Rancher writes np-default")
	}
	from := np.Spec.Ingress[0].From
	project, ok1 := projectSelector(from[0])
	system, ok2 := projectSelector(from[1])
	if !ok1 || !ok2 {
		return fmt.Errorf("its sources are not two namespace selectors on the label %s, as Rancher writes np-default", ProjectIDKey)
	}
	if label := np.Labels[ProjectIDKey]; label != project {
		return fmt.Errorf("its label %s=%q is not the project it admits (%q), as Rancher writes np-default", ProjectIDKey, label, project)
	}
	p.Project, p.SystemProject = project, system
	return nil
}

// readAllowAll: every pod, one empty ingress and one empty egress rule,
// both types, labelled with the System project (netpol.go,
// generateAllowAllNetworkPolicy).
func (p *IsolationPolicy) readAllowAll(np *networkingv1.NetworkPolicy) error {
	s := np.Spec
	empty := len(s.Ingress) == 1 && len(s.Egress) == 1 && len(s.Ingress[0].From) == 0 && len(s.Ingress[0].Ports) == 0 &&
		len(s.Egress[0].To) == 0 && len(s.Egress[0].Ports) == 0
	both := slices.Equal(s.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress})
	if !emptySelector(s.PodSelector) || !empty || !both {
		return fmt.Errorf("it is not the allow-everything policy Rancher writes as np-default-allow-all (every pod, one empty ingress and one empty egress rule)")
	}
	p.SystemProject = np.Labels[ProjectIDKey]
	return nil
}

// readHostNetwork: every pod, one ingress rule without ports from single
// addresses (netpol.go, handleHostNetwork: each node's Calico tunnel
// address, or the first address of its pod CIDR, as a /32).
func (p *IsolationPolicy) readHostNetwork(np *networkingv1.NetworkPolicy) error {
	if !emptySelector(np.Spec.PodSelector) {
		return fmt.Errorf("it selects some pods only, where Rancher's hn-nodes selects every pod of its namespace")
	}
	if err := ingressOnly(np, false); err != nil {
		return err
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) > 0 || len(np.Spec.Ingress[0].From) == 0 {
		return fmt.Errorf("its ingress is not one rule from node addresses on every port, as Rancher writes hn-nodes")
	}
	for _, peer := range np.Spec.Ingress[0].From {
		b := peer.IPBlock
		if b == nil || peer.PodSelector != nil || peer.NamespaceSelector != nil || len(b.Except) > 0 ||
			!(strings.HasSuffix(b.CIDR, "/32") || strings.HasSuffix(b.CIDR, "/128")) {
			return fmt.Errorf("its sources are not single addresses (/32), as Rancher writes hn-nodes")
		}
		p.Sources = append(p.Sources, b.CIDR)
	}
	return nil
}

// readNodePorts: the Service's selector, one ingress rule from anywhere
// to its target ports (servicehandler.go, generateServiceNetworkPolicy;
// Rancher sets no policyTypes).
func (p *IsolationPolicy) readNodePorts(np *networkingv1.NetworkPolicy) error {
	if err := p.readOpenPorts(np, "np-<service>"); err != nil {
		return err
	}
	p.Target = ownerName(np, "Service", strings.TrimPrefix(np.Name, "np-"))
	return nil
}

// readHostPorts: the pod by Rancher's podName label, one ingress rule
// from anywhere to its host ports' container ports (podhandler.go,
// generatePodNetworkPolicy).
func (p *IsolationPolicy) readHostPorts(np *networkingv1.NetworkPolicy) error {
	pod := strings.TrimPrefix(np.Name, "hp-")
	sel := np.Spec.PodSelector
	if len(sel.MatchExpressions) > 0 || len(sel.MatchLabels) != 1 || sel.MatchLabels[PodNameLabel] != pod {
		return fmt.Errorf("it does not select the pod %s by the label %s, as Rancher writes hp-<pod>", pod, PodNameLabel)
	}
	if err := p.readOpenPorts(np, "hp-<pod>"); err != nil {
		return err
	}
	p.Target = ownerName(np, "Pod", pod)
	return nil
}

func (p *IsolationPolicy) readOpenPorts(np *networkingv1.NetworkPolicy, what string) error {
	if err := ingressOnly(np, true); err != nil {
		return err
	}
	if !opensPorts(np) {
		return fmt.Errorf("its ingress is not one rule from anywhere to some ports, as Rancher writes %s", what)
	}
	for _, port := range np.Spec.Ingress[0].Ports {
		protocol := "TCP"
		if port.Protocol != nil && *port.Protocol != "" {
			protocol = string(*port.Protocol)
		}
		if port.Port == nil {
			return fmt.Errorf("a port without a number or name, which Rancher never writes in %s", what)
		}
		p.Ports = append(p.Ports, protocol+" "+port.Port.String())
	}
	return nil
}

// ownerName is the name of np's owner of the kind Rancher sets, or name.
func ownerName(np *networkingv1.NetworkPolicy, kind, name string) string {
	for _, o := range np.OwnerReferences {
		if o.Kind == kind && o.Name != "" {
			return o.Name
		}
	}
	return name
}

// Title names the policy for people: "Rancher's project isolation
// (np-default)".
func (p IsolationPolicy) Title() string {
	if p.Role == "" {
		return "Rancher's project isolation (" + p.Name + ", not as Rancher writes it)"
	}
	return "Rancher's project isolation (" + p.Name + ")"
}

// Description says what the policy does, in words.
func (p IsolationPolicy) Description() string {
	what := p.Name + " of Rancher's project isolation"
	switch p.Role {
	case RoleProjectDefault:
		return fmt.Sprintf("%s: ingress from project %s and the System project %s (namespaces labelled %s, a label Rancher does not guard)", what, p.Project, p.SystemProject, ProjectIDKey)
	case RoleSystemAllowAll:
		return what + ": every ingress and egress of this System-project namespace allowed"
	case RoleHostNetwork:
		return fmt.Sprintf("%s: ingress from the nodes' host-network addresses %s", what, shortList(p.Sources, 4))
	case RoleNodePorts:
		return fmt.Sprintf("%s: ingress from anywhere, other projects included (rancher#49430), to the pods of Service %s on %s", what, p.Target, strings.Join(p.Ports, ", "))
	case RoleHostPorts:
		return fmt.Sprintf("%s: ingress from anywhere, other projects included (rancher#49430), to pod %s on %s", what, p.Target, strings.Join(p.Ports, ", "))
	}
	return fmt.Sprintf("labelled %s: %s as Rancher's project isolation, but %s", CreatorLabel, CreatorNorman, p.Unexpected)
}

func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// RoleByName is the role of a policy with Rancher's label, from its name
// and labels alone, for callers that hold the policy in Calico's form
// rather than as the Kubernetes object ClassifyPolicy reads. np-default
// is also what Rancher names the policy of a Service called "default";
// Rancher labels only the project's np-default with the project.
func RoleByName(name string, labels map[string]string) IsolationRole {
	if !IsRancherPolicy(labels) {
		return ""
	}
	switch {
	case name == string(RoleHostNetwork):
		return RoleHostNetwork
	case name == string(RoleSystemAllowAll):
		return RoleSystemAllowAll
	case name == string(RoleProjectDefault) && labels[ProjectIDKey] != "":
		return RoleProjectDefault
	case strings.HasPrefix(name, "np-"):
		return RoleNodePorts
	case strings.HasPrefix(name, "hp-"):
		return RoleHostPorts
	}
	return ""
}
