package objects

import (
	"fmt"
	"maps"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
)

// Preview returns the cluster as it would be with calico-pni's policies
// and namespace labels in place: computed from the same objects exactly as
// `calico-pni render -f` computes them (the Set's Snapshot, then
// policies.Generate with cfg), replacing whatever calico-pni wrote before
// (policies with its managed-by label, and the calico-pni.io/ labels of
// namespaces). The Set must have been read with KeepSnapshot. version is the cluster's Calico
// version, which decides some of the policies.
func Preview(set *Set, cfg *config.Config, version calico.Version) (*evaluator.Cluster, policies.Desired, error) {
	if set.Snapshot == nil {
		return nil, policies.Desired{}, fmt.Errorf("the objects were read without keeping the snapshot a preview needs")
	}
	snap := *set.Snapshot
	snap.CalicoVersion = version
	d := policies.Generate(snap, cfg)

	c := set.Cluster
	c.Policies, c.Staged, c.Tiers = nil, nil, nil
	if version != (calico.Version{}) {
		c.CalicoVersion = version
	}
	for _, p := range set.Cluster.Policies {
		if !p.Managed {
			c.Policies = append(c.Policies, p)
		}
	}
	for _, p := range set.Cluster.Staged {
		if !p.Managed {
			c.Staged = append(c.Staged, p)
		}
	}
	for _, p := range d.Policies {
		if p.Staged {
			c.Staged = append(c.Staged, generated(p))
		} else {
			c.Policies = append(c.Policies, generated(p))
		}
	}
	// calico-pni's own tier, as it would write it (in tier mode), in place
	// of any copy read from the cluster.
	for _, t := range set.Cluster.Tiers {
		if d.Tier == nil || t.Name != d.Tier.Name {
			c.Tiers = append(c.Tiers, t)
		}
	}
	if t := d.Tier; t != nil {
		c.Tiers = append(c.Tiers, evaluator.Tier{Name: t.Name, Order: t.Spec.Order, DefaultAction: t.Spec.DefaultAction})
	}
	wanted := make(map[string]map[string]string, len(d.Namespaces))
	for _, ns := range d.Namespaces {
		wanted[ns.Name] = ns.Labels
	}
	c.Namespaces = make([]evaluator.Namespace, len(set.Cluster.Namespaces))
	for i, ns := range set.Cluster.Namespaces {
		labels := make(map[string]string, len(ns.Labels)+2)
		for k, v := range ns.Labels {
			if !strings.HasPrefix(k, policies.LabelPrefix) {
				labels[k] = v
			}
		}
		maps.Copy(labels, wanted[ns.Name])
		c.Namespaces[i] = evaluator.Namespace{Name: ns.Name, Labels: labels, Annotations: ns.Annotations}
	}
	sortCluster(&c)
	return &c, d, nil
}

// generated turns a policy calico-pni would write into the evaluator's
// form.
func generated(p calico.Policy) evaluator.Policy {
	out := evaluator.Policy{Kind: evaluator.GlobalNetworkPolicy, Name: p.Name, Tier: p.Spec.Tier, Spec: p.Spec, Managed: true}
	if out.Tier == evaluator.DefaultTier {
		out.Tier = ""
	}
	if p.Namespace != "" {
		out.Kind, out.Namespace = evaluator.NetworkPolicy, p.Namespace
	}
	if p.Staged {
		out.Kind, out.StagedAction = "Staged"+out.Kind, evaluator.StagedSet
	}
	return out
}
