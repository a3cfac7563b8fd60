package controller

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/exposures"
	"github.com/calico-pni/calico-pni/objects"
	"github.com/calico-pni/calico-pni/policies"

	"github.com/calico-pni/calico-pni/cluster"
)

// model is one object of the users as the evaluator reads it, kept while
// its resourceVersion stays: converting two thousand policies on every
// pass would cost more than the rest of the pass.
type model struct {
	resourceVersion string
	policies        []*evaluator.Policy
	tier            *evaluator.Tier
}

// findExposures puts in each isolated namespace's status the policies,
// not written by calico-pni, that open its walls, and returns how many
// namespaces have one. seen collects the models read (forgetModels).
func (c *Controller) findExposures(w *policyWatch, state *cluster.State, desired *policies.Desired, seen map[string]bool) int {
	in := exposures.Input{SystemProject: desired.SystemProject, TierOrders: map[string]*float64{}, WallTier: evaluator.DefaultTier}
	defaultOrder := 1_000_000.0
	in.TierOrders[evaluator.DefaultTier] = &defaultOrder
	if t := desired.Tier; t != nil {
		in.WallTier, in.TierOrders[t.Name] = t.Name, t.Spec.Order
	}
	for _, u := range w.objects("Tier") {
		if m := c.model("Tier", u, seen); m.tier != nil && m.tier.Name != evaluator.DefaultTier {
			in.TierOrders[m.tier.Name] = m.tier.Order
		}
	}
	for _, kind := range []string{"GlobalNetworkPolicy", "NetworkPolicy"} {
		for _, u := range w.objects(kind) {
			// The Calico API server lists Kubernetes NetworkPolicies as
			// knp.default.*; they are read from Kubernetes below.
			// calico-pni's own policies are never exposures.
			if !strings.HasPrefix(u.GetName(), "knp.") && u.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue {
				in.Policies = append(in.Policies, c.model(kind, u, seen).policies...)
			}
		}
	}
	for _, np := range typed[networkingv1.NetworkPolicy](c.networkPolicies.GetStore().List()) {
		in.Policies = append(in.Policies, c.kubernetesModel(np, seen).policies...)
	}
	if c.Config().HostNetwork.Enabled {
		// calico-pni's walls admit the nodes' host network themselves:
		// a rule admitting only those addresses (Rancher's hn-nodes)
		// opens nothing.
		for _, n := range state.Snap.Nodes {
			in.HostAddresses = append(in.HostAddresses, n.HostAddresses...)
		}
	}
	if len(in.Policies) == 0 {
		return 0
	}
	in.Namespaces = make([]exposures.Namespace, len(desired.Namespaces))
	labels := make(map[string]map[string]string, len(state.Snap.Namespaces))
	for _, ns := range state.Snap.Namespaces {
		labels[ns.Name] = ns.Labels
	}
	for i, d := range desired.Namespaces {
		in.Namespaces[i] = exposures.Namespace{Name: d.Name, Labels: labels[d.Name], Project: d.Status.Project, Isolated: d.Status.Isolated}
	}
	found := exposures.Find(in)
	for i := range desired.Namespaces {
		if list := found[desired.Namespaces[i].Name]; len(list) > 0 {
			desired.Namespaces[i].Status.Exposures = list
		}
	}
	return len(found)
}

// forgetModels drops the models of objects no pass read this time.
func (c *Controller) forgetModels(seen map[string]bool) {
	for key := range c.models {
		if !seen[key] {
			delete(c.models, key)
		}
	}
}

// model returns the evaluator's reading of a Calico object, converting it
// only when it changed.
func (c *Controller) model(kind string, u *unstructured.Unstructured, seen map[string]bool) model {
	key := kind + "/" + u.GetNamespace() + "/" + u.GetName()
	seen[key] = true
	if m, ok := c.models[key]; ok && m.resourceVersion == u.GetResourceVersion() {
		return m
	}
	m := model{resourceVersion: u.GetResourceVersion()}
	r := objects.NewReader()
	if err := r.Add(key, u.Object); err != nil {
		c.log.Debug("a policy the evaluator cannot read is left out of the exposures", "object", key, "error", err)
	} else {
		set := r.Finish()
		for i := range set.Cluster.Policies {
			m.policies = append(m.policies, &set.Cluster.Policies[i])
		}
		if len(set.Cluster.Tiers) > 0 {
			m.tier = &set.Cluster.Tiers[0]
		}
	}
	c.remember(key, m)
	return m
}

// kubernetesModel returns Calico's reading of a Kubernetes NetworkPolicy.
func (c *Controller) kubernetesModel(np *networkingv1.NetworkPolicy, seen map[string]bool) model {
	key := "KubernetesNetworkPolicy/" + np.Namespace + "/" + np.Name
	seen[key] = true
	if m, ok := c.models[key]; ok && m.resourceVersion == np.ResourceVersion {
		return m
	}
	p, _ := evaluator.FromKubernetes(np)
	m := model{resourceVersion: np.ResourceVersion, policies: []*evaluator.Policy{&p}}
	c.remember(key, m)
	return m
}

func (c *Controller) remember(key string, m model) {
	if c.models == nil {
		c.models = map[string]model{}
	}
	c.models[key] = m
}
