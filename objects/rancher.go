package objects

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/rancher"
)

// noteRancher remembers a NetworkPolicy of Rancher's own project
// isolation (label cattle.io/creator: norman), classified by its name and
// shape, so that explain and matrix can name it as Rancher's.
func (r *Reader) noteRancher(np *networkingv1.NetworkPolicy, p *evaluator.Policy) {
	iso, ok := rancher.ClassifyPolicy(np)
	if !ok {
		return
	}
	if r.rancher == nil {
		r.rancher = map[string]rancher.IsolationPolicy{}
	}
	r.rancher[p.String()] = iso
}

// WithoutRancher returns what was read without the NetworkPolicies of
// Rancher's project isolation, as Rancher leaves a cluster when the
// isolation is switched off: it deletes every NetworkPolicy labelled
// cattle.io/creator: norman and nothing else (rancher/rancher
// clusterHandler.go, deleteNetworkPolicies; the pods keep the label
// field.cattle.io/podName). Both the evaluator's cluster and the
// generator's input lose them, so a preview of it has no copies of them
// either. It also returns how many it left out.
func WithoutRancher(set *Set) (*Set, int) {
	out := *set
	out.Cluster.Policies = make([]evaluator.Policy, 0, len(set.Cluster.Policies))
	for _, p := range set.Cluster.Policies {
		if p.Kind == evaluator.KubernetesNetworkPolicy && rancher.IsRancherPolicy(p.Labels) {
			continue
		}
		out.Cluster.Policies = append(out.Cluster.Policies, p)
	}
	if set.Snapshot != nil {
		snap := *set.Snapshot
		snap.RancherPolicies = nil
		out.Snapshot = &snap
	}
	out.Rancher = nil
	return &out, len(set.Cluster.Policies) - len(out.Cluster.Policies)
}
