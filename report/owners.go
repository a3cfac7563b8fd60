package report

import (
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/evaluator"
)

// Owner says who wrote a policy that is neither calico-pni's nor plainly
// the users', such as the NetworkPolicies of Rancher's own project
// isolation, so that explain and matrix can say so.
type Owner struct {
	// Name is short: "Rancher's project isolation (np-default)".
	Name string `json:"name"`
	// Description says what the policy does, in words.
	Description string `json:"description"`
}

// Owners gives the owner of policies by the evaluator's name for them
// (evaluator.Policy.String(): "shop/knp.default.np-default").
type Owners map[string]Owner

// of returns the owner of p.
func (o Owners) of(p *evaluator.Policy) (Owner, bool) {
	if p == nil || len(o) == 0 {
		return Owner{}, false
	}
	owner, ok := o[p.String()]
	return owner, ok
}

// describe is what explain says of a policy: its kind, place and order,
// and what its owner wrote it for.
func (o Owners) describe(p *evaluator.Policy) string {
	if owner, ok := o.of(p); ok {
		return p.Describe() + "; " + owner.Description
	}
	return p.Describe()
}

// endOfTierSuffix ends the name of a policy an end of tier is charged to,
// as the matrix names deciders (evaluator.Decider).
const endOfTierSuffix = " (end of tier "

// decider names a matrix cell's decider ("shop/knp.default.np-web", or
// with " (end of tier default)") with its owner, if it has one.
func (o Owners) decider(d string) string {
	if len(o) == 0 {
		return d
	}
	name, rest := d, ""
	if i := strings.Index(d, endOfTierSuffix); i >= 0 {
		name, rest = d[:i], d[i:]
	}
	if owner, ok := o[name]; ok {
		return name + " [" + owner.Name + "]" + rest
	}
	return d
}

// deciders names each of a cell's deciders with its owner.
func (o Owners) deciders(ds []string) []string {
	if len(o) == 0 {
		return ds
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = o.decider(d)
	}
	return out
}

// deciding returns the policy that decided a side: the one whose rule
// made its last hit, or the one an end of tier is charged to (the last of
// that tier to select the endpoint), as evaluator.Decider names it; nil
// when the profile decided.
func deciding(s *evaluator.Side) *evaluator.Policy {
	if len(s.Hits) == 0 {
		return nil
	}
	h := s.Hits[len(s.Hits)-1]
	if h.Kind == "Profile" {
		return nil
	}
	for i := len(s.Steps) - 1; i >= 0; i-- {
		st := s.Steps[i]
		if st.Policy != nil && st.Tier == h.Tier && (h.Kind == "EndOfTier" || st.Rule >= 0) {
			return st.Policy
		}
	}
	return nil
}

// ofDeciders collects the owners of a cell's deciders, for the JSON form.
func (o Owners) ofDeciders(c evaluator.Cell, into map[string]Owner) {
	if len(o) == 0 {
		return
	}
	for _, d := range slices.Concat(c.AllowedBy, c.DeniedBy) {
		name, _, _ := strings.Cut(d, endOfTierSuffix)
		if owner, ok := o[name]; ok {
			into[name] = owner
		}
	}
}

// inResult collects the owners of the policies that select either side
// of r, for the JSON form.
func (o Owners) inResult(r *evaluator.Result, into map[string]Owner) {
	for _, s := range []*evaluator.Side{&r.Egress, &r.Ingress} {
		for _, t := range s.Tiers {
			for _, p := range t.Policies {
				if owner, ok := o.of(p); ok {
					into[p.String()] = owner
				}
			}
		}
	}
}
