package evaluator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// walk follows one side through its tiers as Felix's chains do
// (felix/rules/endpoints.go and policy.go): in each tier, each selecting
// policy's rules in order; Allow and Deny end the walk, Pass jumps to the
// next tier, Log goes on; at the end of a tier whose policies decided
// nothing, the tier's default action; after the last tier, the profile.
type walk struct {
	ix    *Index
	dir   calico.PolicyType
	local *Endpoint
	peer  *Endpoint
	t     Traffic
	tiers []selectedTier
	forks int
}

// outcome is where a walk ends.
type outcome struct {
	verdict    Verdict
	reason     string
	steps      []Step
	hits       []Hit
	notReached int
}

// from walks on from rule ri of policy pi of tier ti, after the steps and
// hits so far.
func (w *walk) from(ti, pi, ri int, steps []Step, hits []Hit) outcome {
	for ; ti < len(w.tiers); ti, pi, ri = ti+1, 0, 0 {
		tier := w.tiers[ti]
		for ; pi < len(tier.policies); pi, ri = pi+1, 0 {
			cp := tier.policies[pi]
			rules := cp.rules(w.dir)
			if ri == 0 || len(steps) == 0 || steps[len(steps)-1].Policy != cp.Policy {
				steps = append(steps, Step{Tier: tier.tier.name, Policy: cp.Policy, Rule: -1})
			}
			step := &steps[len(steps)-1]
			for ; ri < len(rules); ri++ {
				r := rules[ri]
				m, why := w.ix.ruleMatch(r, w.local, w.peer, w.t)
				if m == No {
					continue
				}
				if r.action == calico.Log {
					if m == Yes {
						step.Logged = append(step.Logged, ri)
					}
					continue
				}
				if m == Unknown {
					return w.fork(ti, pi, ri, r, why, steps, hits)
				}
				return w.decide(ti, pi, ri, r, steps, hits)
			}
		}
		steps, hits = w.endOfTier(ti, steps, hits)
		if tier.tier.defaultAction != calico.Pass {
			return outcome{verdict: Deny, reason: w.endOfTierReason(ti), steps: steps, hits: hits}
		}
	}
	steps = append(steps, Step{Profile: true, Rule: 0, Action: calico.Allow})
	hits = append(hits, Hit{Kind: "Profile", Name: "kns." + w.local.Namespace, Action: calico.Allow, PolicyIndex: len(w.tiers), RuleIndex: 0})
	reason := "no policy selects " + w.local.String() + " for " + strings.ToLower(string(w.dir)) + ", so its namespace's profile allows it"
	if len(w.tiers) > 0 {
		reason = "every tier passed it on, and the namespace's profile allows it"
	}
	return outcome{verdict: Allow, reason: reason, steps: steps, hits: hits}
}

// decide applies the action of a rule that matched.
func (w *walk) decide(ti, pi, ri int, r *rule, steps []Step, hits []Hit) outcome {
	steps = slices.Clone(steps)
	step := &steps[len(steps)-1]
	step.Rule, step.Action = ri, r.action
	cp := r.policy
	hits = append(slices.Clone(hits), Hit{
		Kind: cp.FlowLogKind(), Namespace: cp.Namespace, Name: cp.FlowLogName(), Tier: cp.TierName(),
		Action: r.action, PolicyIndex: ti, RuleIndex: ri,
	})
	where := fmt.Sprintf("%s rule %d of %s", strings.ToLower(string(w.dir)), ri, cp.Policy)
	switch r.action {
	case calico.Allow:
		return outcome{verdict: Allow, reason: where + " allows it", steps: steps, hits: hits, notReached: w.after(ti, pi)}
	case calico.Deny:
		return outcome{verdict: Deny, reason: where + " denies it", steps: steps, hits: hits, notReached: w.after(ti, pi)}
	}
	// Pass: on to the next tier.
	return w.from(ti+1, 0, 0, steps, hits)
}

// fork follows a rule that cannot be decided both ways. If both ways end
// alike, the rule did not matter and the walk without it is reported.
func (w *walk) fork(ti, pi, ri int, r *rule, why string, steps []Step, hits []Hit) outcome {
	where := fmt.Sprintf("%s rule %d of %s", strings.ToLower(string(w.dir)), ri, r.policy.Policy)
	w.forks++
	if w.forks > maxForks {
		return outcome{verdict: Indeterminate, reason: where + " cannot be decided: " + why, steps: steps, hits: hits}
	}
	matched := w.decide(ti, pi, ri, r, steps, hits)
	steps = slices.Clone(steps)
	steps[len(steps)-1].Uncertain = append(slices.Clone(steps[len(steps)-1].Uncertain), fmt.Sprintf("rule %d (%s) cannot be decided: %s; the result is the same either way", ri, r.action, why))
	rest := w.from(ti, pi, ri+1, steps, slices.Clone(hits))
	if matched.verdict == rest.verdict && rest.verdict != Indeterminate {
		return rest
	}
	if rest.verdict == Indeterminate {
		return rest
	}
	steps[len(steps)-1].Uncertain[len(steps[len(steps)-1].Uncertain)-1] = fmt.Sprintf("rule %d (%s) cannot be decided: %s", ri, r.action, why)
	return outcome{verdict: Indeterminate, reason: where + " cannot be decided, and it changes the result: " + why, steps: steps, hits: hits}
}

// endOfTier records the default action of tier ti.
func (w *walk) endOfTier(ti int, steps []Step, hits []Hit) ([]Step, []Hit) {
	tier := w.tiers[ti]
	last := tier.policies[len(tier.policies)-1]
	steps = append(steps, Step{Tier: tier.tier.name, EndOfTier: true, Rule: -1, Action: tier.tier.defaultAction})
	hits = append(hits, Hit{
		Kind: "EndOfTier", Tier: tier.tier.name, Action: tier.tier.defaultAction, PolicyIndex: ti, RuleIndex: -1,
		Trigger: &Hit{Kind: last.FlowLogKind(), Namespace: last.Namespace, Name: last.FlowLogName(), Tier: tier.tier.name},
	})
	return steps, hits
}

func (w *walk) endOfTierReason(ti int) string {
	tier := w.tiers[ti]
	last := tier.policies[len(tier.policies)-1]
	return fmt.Sprintf("end of tier %s: %s selects %s and no policy of the tier allowed it, so the tier's default action (%s) applies", tier.tier.name, last.Policy, w.local, tier.tier.defaultAction)
}

// after counts the selecting policies that come after policy pi of tier ti.
func (w *walk) after(ti, pi int) int {
	n := len(w.tiers[ti].policies) - pi - 1
	for _, t := range w.tiers[ti+1:] {
		n += len(t.policies)
	}
	return n
}
