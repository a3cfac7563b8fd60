package objects

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// legacyDefaultPrefix is the prefix Calico up to 3.31 stores default-tier
// policies under in its crd.projectcalico.org/v1 CRDs.
const legacyDefaultPrefix = "default."

// Name prefixes under which Calico's v3 API lists policies it made from
// other objects: Kubernetes NetworkPolicies, and Kubernetes admin network
// policies (3.29 to 3.31, and ClusterNetworkPolicies from 3.32).
var adminPrefixes = []string{"kanp.", "kbanp.", "kcnp."}

func (r *Reader) calicoObject(u *unstructured.Unstructured, group string) error {
	kind := u.GetKind()
	switch kind {
	case "GlobalNetworkPolicy", "NetworkPolicy", "StagedGlobalNetworkPolicy", "StagedNetworkPolicy":
		return r.calicoPolicy(u, group)
	case "StagedKubernetesNetworkPolicy":
		return r.stagedKubernetes(u, group)
	case "Tier":
		var spec struct {
			Order         *float64      `json:"order"`
			DefaultAction calico.Action `json:"defaultAction"`
		}
		if err := specOf(u, &spec); err != nil {
			return err
		}
		if spec.DefaultAction != "" && spec.DefaultAction != calico.Deny && spec.DefaultAction != calico.Pass {
			return fmt.Errorf("spec.defaultAction %q: a tier's default action is Deny or Pass", spec.DefaultAction)
		}
		r.cluster.Tiers = append(r.cluster.Tiers, evaluator.Tier{Name: u.GetName(), Order: spec.Order, DefaultAction: spec.DefaultAction})
	case "GlobalNetworkSet", "NetworkSet":
		var spec struct {
			Nets []string `json:"nets"`
		}
		if err := specOf(u, &spec); err != nil {
			return err
		}
		set := evaluator.NetworkSet{Namespace: u.GetNamespace(), Name: u.GetName(), Labels: u.GetLabels()}
		for i, text := range spec.Nets {
			p, err := parsePrefix(text)
			if err != nil {
				return fmt.Errorf("spec.nets[%d]: %q is not a CIDR", i, text)
			}
			set.Nets = append(set.Nets, p)
		}
		r.cluster.NetworkSets = append(r.cluster.NetworkSets, set)
	case "HostEndpoint":
		var spec struct {
			Node        string   `json:"node"`
			ExpectedIPs []string `json:"expectedIPs"`
		}
		if err := specOf(u, &spec); err != nil {
			return err
		}
		hep := evaluator.HostEndpoint{Name: u.GetName(), Node: spec.Node, Labels: u.GetLabels()}
		for _, text := range spec.ExpectedIPs {
			if a, err := parseAddr(text); err == nil {
				hep.ExpectedIPs = append(hep.ExpectedIPs, a)
			}
		}
		r.cluster.HostEndpoints = append(r.cluster.HostEndpoints, hep)
	case "FelixConfiguration":
		if u.GetName() == "default" {
			action, _, _ := unstructured.NestedString(u.Object, "spec", "defaultEndpointToHostAction")
			r.cluster.EndpointToHostAction = action
		}
	case "ClusterInformation":
		if v, _, _ := unstructured.NestedString(u.Object, "spec", "calicoVersion"); v != "" && r.version == "" {
			r.version = v
		}
	default:
		r.notes = append(r.notes, fmt.Sprintf("%s %s %s: skipped: not a kind calico-pni reads", group, kind, u.GetName()))
	}
	return nil
}

// calicoPolicy reads a Calico policy of either API. The v3 name and the
// tier follow Calico's naming: in the v1 CRDs of Calico up to 3.31 a
// default-tier policy "foo" is stored as "default.foo"; from 3.29 to 3.31
// a policy of tier "t" is named "t.foo" in both APIs; spec.tier, when
// set, says the tier.
func (r *Reader) calicoPolicy(u *unstructured.Unstructured, group string) error {
	kind := evaluator.Kind(u.GetKind())
	var spec calico.GlobalNetworkPolicySpec
	if err := specOf(u, &spec); err != nil {
		return err
	}
	name := u.GetName()
	if group == calico.GroupV1 {
		name = strings.TrimPrefix(name, legacyDefaultPrefix)
	}
	for _, prefix := range adminPrefixes {
		if strings.HasPrefix(name, prefix) {
			r.cluster.Unsupported = append(r.cluster.Unsupported, fmt.Sprintf("%s %s comes from a Kubernetes admin network policy, which the evaluator does not model", kind, name))
			return nil
		}
	}
	tier := spec.Tier
	if tier == "" {
		if prefix, _, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "knp.") {
			tier = prefix
		}
	}
	if tier == evaluator.DefaultTier {
		tier = ""
	}
	spec.Tier = tier
	if group == calico.GroupV3 && len(spec.Types) == 0 {
		// Felix reads a v1 object without types as both directions; the v3
		// API would have defaulted them.
		spec.Types = calicoDefaultTypes(spec)
	}
	p := evaluator.Policy{
		Kind: kind, Namespace: u.GetNamespace(), Name: name, Tier: tier, Spec: spec,
		Managed: u.GetLabels()[calico.ManagedByLabel] == calico.ManagedByValue,
	}
	if kind.Namespaced() && p.Namespace == "" {
		return fmt.Errorf("metadata.namespace must be set")
	}
	if kind == evaluator.NetworkPolicy && group == calico.GroupV3 && strings.HasPrefix(name, "knp.default.") {
		// The Calico API server lists every Kubernetes NetworkPolicy as a
		// Calico NetworkPolicy named knp.default.<name>.
		p.Kind, p.Name, p.Tier = evaluator.KubernetesNetworkPolicy, strings.TrimPrefix(name, "knp.default."), ""
		r.knpFromV3[p.Namespace+"/"+p.Name] = p
		return nil
	}
	staged := kind.Staged()
	if staged {
		action, _, _ := unstructured.NestedString(u.Object, "spec", "stagedAction")
		var err error
		if p.StagedAction, err = stagedAction(action); err != nil {
			return err
		}
	}
	if r.calico[group] == nil {
		r.calico[group] = map[string]calicoPolicy{}
	}
	r.calico[group][string(kind)+"/"+p.Namespace+"/"+p.Name] = calicoPolicy{policy: p, staged: staged}
	return nil
}

// stagedKubernetes reads a StagedKubernetesNetworkPolicy: a Kubernetes
// NetworkPolicy spec with a stagedAction, converted as Calico converts
// the policy it stands for.
func (r *Reader) stagedKubernetes(u *unstructured.Unstructured, group string) error {
	var spec struct {
		networkingv1.NetworkPolicySpec `json:",inline"`
		StagedAction                   string `json:"stagedAction"`
	}
	if err := specOf(u, &spec); err != nil {
		return err
	}
	// No defaulting of policyTypes here: up to Calico 3.31 nothing
	// defaults them and Calico's conversion then applies the policy to
	// ingress alone (conversion.go, K8sNetworkPolicyToCalico). From 3.32
	// the admission policy adds Egress when there are egress rules, which
	// objects listed from such a cluster already carry.
	np := &networkingv1.NetworkPolicy{Spec: spec.NetworkPolicySpec}
	np.Name, np.Namespace = u.GetName(), u.GetNamespace()
	p, notes := evaluator.FromKubernetes(np)
	r.notes = append(r.notes, notes...)
	p.Kind = evaluator.StagedKubernetesNetworkPolicy
	var err error
	if p.StagedAction, err = stagedAction(spec.StagedAction); err != nil {
		return err
	}
	if r.calico[group] == nil {
		r.calico[group] = map[string]calicoPolicy{}
	}
	r.calico[group][string(p.Kind)+"/"+p.Namespace+"/"+p.Name] = calicoPolicy{policy: p, staged: true}
	return nil
}

// stagedAction reads spec.stagedAction: one of Calico's enum
// (api/pkg/apis/projectcalico/v3/policy_common.go), Set when left out.
func stagedAction(text string) (evaluator.StagedAction, error) {
	switch a := evaluator.StagedAction(text); a {
	case "":
		return evaluator.StagedSet, nil
	case evaluator.StagedSet, evaluator.StagedDelete, evaluator.StagedLearn, evaluator.StagedIgnore:
		return a, nil
	}
	return "", fmt.Errorf("spec.stagedAction %q: Calico's staged actions are Set, Delete, Learn and Ignore", text)
}

// specOf decodes an object's spec.
func specOf(u *unstructured.Unstructured, into any) error {
	raw, ok := u.Object["spec"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		if explained := policies.ExplainNotString(raw, "spec", err); explained != err {
			return explained
		}
		return fmt.Errorf("spec: %w", err)
	}
	return nil
}

func parsePrefix(text string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(text); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// sortCluster puts everything in a stable order, so that the same input
// always gives the same output.
func sortCluster(c *evaluator.Cluster) {
	byPolicy := func(a, b evaluator.Policy) int {
		return strings.Compare(string(a.Kind)+"/"+a.Namespace+"/"+a.Name, string(b.Kind)+"/"+b.Namespace+"/"+b.Name)
	}
	slices.SortFunc(c.Policies, byPolicy)
	slices.SortFunc(c.Staged, byPolicy)
	slices.SortStableFunc(c.Namespaces, func(a, b evaluator.Namespace) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(c.Pods, func(a, b evaluator.Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	slices.SortStableFunc(c.Tiers, func(a, b evaluator.Tier) int { return strings.Compare(a.Name, b.Name) })
}
