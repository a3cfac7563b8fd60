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
