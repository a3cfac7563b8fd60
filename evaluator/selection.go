package evaluator

import (
	"fmt"

	"github.com/calico-pni/calico-pni/calico"
)

// selectedTier is a tier with the policies of it that select an endpoint.
type selectedTier struct {
	tier     *tierInfo
	policies []*compiledPolicy
}

type selectionKey struct {
	ep  *Endpoint
	dir calico.PolicyType
}

type selection struct {
	tiers []selectedTier
	err   error
}

// Selecting returns the tiers and the policies in them that select an
// endpoint for a direction, in the order Felix evaluates them (only tiers
// with such policies are listed, as Felix only traverses those). It fails
// when a policy's selection cannot be decided or when a policy that
// selects the endpoint cannot be modelled.
func (ix *Index) Selecting(ep *Endpoint, dir calico.PolicyType) ([]TierPolicies, error) {
	tiers, err := ix.selecting(ep, dir)
	return publicTiers(tiers), err
}

func (ix *Index) selecting(ep *Endpoint, dir calico.PolicyType) ([]selectedTier, error) {
	key := selectionKey{ep, dir}
	if s, ok := ix.selections.Load(key); ok {
		return s.(*selection).tiers, s.(*selection).err
	}
	tiers, err := ix.computeSelecting(ep, dir)
	ix.selections.Store(key, &selection{tiers, err})
	return tiers, err
}

func (ix *Index) computeSelecting(ep *Endpoint, dir calico.PolicyType) ([]selectedTier, error) {
	global, local := ix.globals.candidates(ep.Labels), ix.namespaced[ep.Namespace]
	var out []selectedTier
	add := func(cp *compiledPolicy) error {
		if !cp.Governs(dir) {
			return nil
		}
		switch m, why := cp.selectsEndpoint(ep); m {
		case No:
			return nil
		case Unknown:
			return fmt.Errorf("cannot tell whether %s (%s) selects %s: %s", cp.Policy, cp.Describe(), ep, why)
		}
		if cp.invalid != "" {
			return fmt.Errorf("%s (%s) selects %s, but Calico would not accept it: %s", cp.Policy, cp.Describe(), ep, cp.invalid)
		}
		if cp.unmodelled != "" {
			return fmt.Errorf("%s (%s) selects %s, and %s", cp.Policy, cp.Describe(), ep, cp.unmodelled)
		}
		if n := len(out); n > 0 && out[n-1].tier == cp.tier {
			out[n-1].policies = append(out[n-1].policies, cp)
		} else {
			out = append(out, selectedTier{tier: cp.tier, policies: []*compiledPolicy{cp}})
		}
		return nil
	}
	// Both lists are in evaluation order; merge them.
	for len(global) > 0 || len(local) > 0 {
		var next *compiledPolicy
		if len(local) == 0 || (len(global) > 0 && global[0].pos < local[0].pos) {
			next, global = global[0], global[1:]
		} else {
			next, local = local[0], local[1:]
		}
		if err := add(next); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// selectsEndpoint evaluates the policy's endpoint selector.
func (cp *compiledPolicy) selectsEndpoint(ep *Endpoint) (Match, string) {
	if cp.selects == nil {
		return Unknown, cp.invalid
	}
	if cp.selects.readsNS && ep.nsUnknown {
		return Unknown, "the namespace " + ep.Namespace + " was not read"
	}
	if cp.selects.readsSA && ep.saUnknown {
		return Unknown, "the pod's service account was not read"
	}
	if cp.selects.Matches(ep.Labels) {
		return Yes, ""
	}
	return No, ""
}
