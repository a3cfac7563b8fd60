package plan

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// Input is what a pass plans on: the desired state and what the API
// server holds.
type Input struct {
	Desired policies.Desired
	API     calico.API
	// Managed are calico-pni's policies on the server, LiveTiers its tiers.
	Managed   []*unstructured.Unstructured
	LiveTiers []*unstructured.Unstructured
	// Namespaces are the namespaces on the server, by name.
	Namespaces map[string]Namespace
	// Canon reads a managed policy's spec in canonical form (CanonicalOf,
	// or a Specs memory of it).
	Canon func(*unstructured.Unstructured) []byte
	// Failed holds, by name, the policy writes that failed in the last
	// pass: the namespaces that need them wait, and the others go ahead.
	Failed map[string]error
}

// Pass plans one pass: every difference between the desired state and the
// server, in the order of the steps:
//
//	tier, hold, widen,                      policies that namespaces may rely on
//	relabel, transit-1, transit-2,          namespaces: labels that change no verdict yet
//	transit-forms,                          policies as a move needs them
//	transit-3, isolate, move, release,      namespaces: what changes verdicts
//	relabel-released, transit-4,
//	plain-forms,                            policies as they end
//	transit-5, status,                      namespaces: the rest
//	baseline, narrow, release-holds,        policies that namespaces no longer rely on
//	tier-delete
//
// Empty steps are left out.
func Pass(in Input) Plan {
	if in.Canon == nil {
		in.Canon = CanonicalOf
	}
	invalid := map[string]error{}
	for _, inv := range in.Desired.Invalid {
		invalid[inv.Name] = inv.Err
	}
	pp := planPolicies(planInput{
		tier: in.Desired.Tier, liveTiers: in.LiveTiers,
		desired: in.Desired.Policies, invalid: invalid, api: in.API,
		managed: in.Managed, canon: in.Canon, isolatedLive: anyIsolated(in.Namespaces),
	})
	inPlace := pp.inPlace(invalid, in.Failed)
	noHold := func(*change) string { return "" }
	ns := planNamespaces(in.Desired.Namespaces, in.Namespaces, inPlace, noHold)
	var forms transitForms
	if ns.transit {
		var why string
		if forms, why = planTransit(&pp, ns.projects, in); why != "" {
			// No gap-free form exists: the moves wait, everything else
			// goes ahead.
			ns = planNamespaces(in.Desired.Namespaces, in.Namespaces, inPlace, func(c *change) string {
				if !c.moves() {
					return ""
				}
				return "the move to " + projectName(c.projectAfter()) + " waits: " + why
			})
			forms = transitForms{}
		}
	}
	p := Plan{Kept: pp.kept, Held: ns.held, Moving: ns.moving, States: ns.states}
	p.Steps = steps(pp, ns, forms)
	return p
}

// inPlace tells, for a policy a namespace needs, whether it is in place
// by the time the namespace is isolated: in place already, or written in
// a step before the namespaces (a baseline counts as written unless it
// failed in the last pass), and why not.
func (pp *policyPlan) inPlace(invalid, failed map[string]error) func(string) (bool, string) {
	planned := map[string]bool{}
	for _, step := range [][]PolicyWrite{pp.tierWrites, pp.hold, pp.widen} {
		for _, w := range step {
			planned[w.Name] = true
		}
	}
	for _, w := range pp.baseline {
		if w.Verb != Delete {
			planned[w.Name] = true
		}
	}
	return func(name string) (bool, string) {
		if err, bad := invalid[name]; bad {
			return false, "invalid: " + err.Error()
		}
		if err, failed := failed[name]; failed {
			return false, err.Error()
		}
		switch {
		case pp.sufficient[name], planned[name]:
			return true, ""
		case pp.late[name]:
			return false, "rewritten after the namespaces of this pass"
		}
		return false, "not written"
	}
}

// steps puts the writes in the order of Pass; empty steps are left out.
func steps(pp policyPlan, ns namespaceSteps, forms transitForms) []Step {
	var out []Step
	add := func(name string, pw []PolicyWrite, waits, makes Effect) {
		if len(pw) > 0 {
			out = append(out, Step{Name: name, Policies: pw, Waits: waits, Makes: makes})
		}
	}
	addNamespaces := func(phases ...int) {
		for _, phase := range phases {
			if w := ns.writes[phase]; len(w) > 0 {
				e := phaseEffects[phase]
				out = append(out, Step{Name: phaseNames[phase], Namespaces: w, Waits: e[0], Makes: e[1]})
			}
		}
	}
	add("tier", pp.tierWrites, 0, Widens)
	add("hold", pp.hold, 0, Widens)
	add("widen", pp.widen, 0, Widens)
	addNamespaces(phaseRelabel, phaseTransit1, phaseTransit2)
	add("transit-forms", forms.enter, Relabels, Widens)
	addNamespaces(phaseTransit3, phaseIsolate, phaseMove, phaseRelease, phaseRelabelReleased, phaseTransit4)
	add("plain-forms", forms.leave, Relabels, Narrows)
	addNamespaces(phaseTransit5, phaseStatus)
	add("baseline", pp.baseline, narrowingWaits(pp.baseline), Narrows)
	add("narrow", pp.narrow, Relabels, Narrows)
	release := pp.release
	for _, w := range pp.hold {
		release = append(release, PolicyWrite{Verb: Delete, Name: w.Name, Class: w.Class, Object: w.Object, OnWritten: true})
	}
	add("release-holds", release, Relabels, Narrows)
	add("tier-delete", pp.tierDeletes, 0, 0)
	return out
}

// narrowingWaits is what a step of baseline writes waits for: creating
// the baseline only selects namespaces that the allow policies already
// select in that direction (or that a hold keeps open), so creates wait
// for nothing; changes and deletes wait for the namespaces released
// before them.
func narrowingWaits(writes []PolicyWrite) Effect {
	for _, w := range writes {
		if w.Verb != Create {
			return Relabels
		}
	}
	return 0
}

func anyIsolated(namespaces map[string]Namespace) bool {
	for _, ns := range namespaces {
		if ns.Labels[policies.IsolatedLabel] == "true" {
			return true
		}
	}
	return false
}
