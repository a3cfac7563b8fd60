package plan

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// A move of several namespaces at once goes through transit labels
// (policies/transit.go). Each moving namespace passes through five stages,
// all of them together, one namespace step per stage:
//
//	stage 1: calico-pni.io/project-before = its old project
//	stage 2: calico-pni.io/project-after  = its new project
//	         (then the transit forms of the policies that match projects)
//	stage 3: calico-pni.io/project        = its new project
//	         (then isolation switched on, then off, where it changes)
//	stage 4: project-before removed
//	         (then the policies' plain forms)
//	stage 5: project-after removed
//
// Under the plain policies the transit labels mean nothing, so stages 1
// and 2 and 5 change no verdict. Under the transit forms a namespace in
// transit belongs to its old project for the rules of the state before,
// and to its new one for the rules of the state after, whatever its
// project label says, so stage 3 changes no verdict either. Stage 1 only
// takes a namespace out of the state-after rules (it is still in the
// state-before ones), stage 2 only adds it to them, stage 4 only takes it
// out of the state-before rules: every state in between allows at least
// what both ends allow and at most what either allows.

// transit stages of a namespace, read from its live labels.
const (
	notInTransit = iota
	hasBefore
	hasAfter
	switched
	hasOnlyAfter
)

// transitStage reads how far a namespace has come in a move that was
// interrupted (a pass that stopped, a replica that lost the lease).
func transitStage(labels map[string]string) int {
	before, hb := labels[policies.ProjectBeforeLabel]
	after, ha := labels[policies.ProjectAfterLabel]
	project := labels[policies.ProjectLabel]
	switch {
	case hb && !ha:
		return hasBefore
	case hb && ha && project == after && project != before:
		return switched
	case hb && ha:
		return hasAfter
	case ha:
		return hasOnlyAfter
	}
	return notInTransit
}

// InTransit returns the namespaces a move left in transit, with the
// project each is on its way to: a pass finishes those moves first, to
// the projects they were planned for (the daemon plans that pass on a
// snapshot in which these namespaces are in those projects), and plans
// later changes in the pass after.
func InTransit(namespaces map[string]Namespace) map[string]string {
	var out map[string]string
	for name, ns := range namespaces {
		if ns.Deleting {
			continue
		}
		if after, ok := ns.Labels[policies.ProjectAfterLabel]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = after
		} else if before, ok := ns.Labels[policies.ProjectBeforeLabel]; ok {
			// Interrupted after stage 1: the new project is not recorded
			// yet; the move starts again from the old one.
			if out == nil {
				out = map[string]string{}
			}
			out[name] = before
		}
	}
	return out
}

// transitSpec returns the form a policy takes while namespaces move
// between projects: its live rules for members as they were before the
// move, then its desired rules for members as they will be after it, each
// set pinned to the endpoints its own form selects (unionSpec). A policy
// that exists on one side only keeps that side. It reports false when no
// such policy can be written (a selector that cannot be read, or a union
// Calico would refuse); the move then waits.
func transitSpec(live, desired *calico.GlobalNetworkPolicySpec) (calico.GlobalNetworkPolicySpec, bool) {
	var before, after calico.GlobalNetworkPolicySpec
	var ok bool
	if live != nil {
		if before, ok = rewriteMembers(*live, policies.MemberBefore); !ok {
			return before, false
		}
	}
	if desired != nil {
		if after, ok = rewriteMembers(*desired, policies.MemberAfter); !ok {
			return after, false
		}
	}
	switch {
	case live == nil:
		return after, true
	case desired == nil:
		return before, true
	}
	return unionSpec(before, after)
}

// rewriteMembers rewrites every project comparison of a policy: in its
// namespaceSelector and in its rules' namespaceSelectors.
func rewriteMembers(spec calico.GlobalNetworkPolicySpec, member func(string) calico.Selector) (calico.GlobalNetworkPolicySpec, bool) {
	ok := true
	rewrite := func(text string) string {
		if text == "" || !ok {
			return text
		}
		s, err := calico.ParseSelector(text)
		if err != nil {
			ok = false
			return text
		}
		out, found := policies.InTransit(s, member)
		if !found {
			return text
		}
		return out.String()
	}
	spec.NamespaceSelector = rewrite(spec.NamespaceSelector)
	spec.Ingress = rewriteRules(spec.Ingress, rewrite)
	spec.Egress = rewriteRules(spec.Egress, rewrite)
	return spec, ok
}

func rewriteRules(rules []calico.Rule, rewrite func(string) string) []calico.Rule {
	if rules == nil {
		return nil
	}
	out := make([]calico.Rule, len(rules))
	for i, r := range rules {
		r.Source.NamespaceSelector = rewrite(r.Source.NamespaceSelector)
		r.Destination.NamespaceSelector = rewrite(r.Destination.NamespaceSelector)
		out[i] = r
	}
	return out
}

// matchesProjects reports whether a policy compares the project label
// with one of the given projects, anywhere a namespace is matched.
func matchesProjects(spec calico.GlobalNetworkPolicySpec, projects map[string]bool) bool {
	found := false
	look := func(text string) {
		if text == "" || found {
			return
		}
		s, err := calico.ParseSelector(text)
		if err != nil {
			// Unreadable: treat it as matching, so that it takes part in
			// the move (and transitSpec reports that it cannot).
			found = true
			return
		}
		calico.Terms(s, func(t calico.Term) {
			if t.Key != policies.ProjectLabel {
				return
			}
			for _, v := range t.Values {
				found = found || projects[v]
			}
		})
	}
	look(spec.NamespaceSelector)
	for _, rules := range [][]calico.Rule{spec.Ingress, spec.Egress} {
		for _, r := range rules {
			look(r.Source.NamespaceSelector)
			look(r.Destination.NamespaceSelector)
		}
	}
	return found
}

// transitForms are the policy writes a move in transit adds to a pass:
// enter puts the transit forms in place (after transit-2), leave the
// plain forms and the deletes (after transit-4).
type transitForms struct {
	enter, leave []PolicyWrite
}

// planTransit takes out of the policy plan every policy that matches one
// of the projects of a move, and plans it in and out of its transit form
// instead. It returns why no gap-free form exists, if so.
func planTransit(pp *policyPlan, projects map[string]bool, in Input) (transitForms, string) {
	var forms transitForms
	a, why := affectedBy(projects, in)
	if why != "" {
		return forms, why
	}
	for _, k := range slices.Sorted(maps.Keys(a.keys)) {
		if why := forms.add(a, k, in); why != "" {
			return forms, why
		}
		if d, wanted := a.desired[k]; wanted {
			pp.sufficient[d.Name] = true
			delete(pp.late, d.Name)
		}
	}
	keep := func(writes []PolicyWrite) []PolicyWrite {
		out := writes[:0:0]
		for _, w := range writes {
			if !a.keys[objectKey(w.Object.GetKind(), w.Object.GetNamespace(), w.Object.GetName())] {
				out = append(out, w)
			}
		}
		return out
	}
	pp.widen, pp.narrow = keep(pp.widen), keep(pp.narrow)
	return forms, ""
}

// affected are the allow policies, live and desired, that match one of
// the projects of a move, by object key.
type affected struct {
	keys    map[string]bool
	live    map[string]*unstructured.Unstructured
	specs   map[string]calico.GlobalNetworkPolicySpec
	desired map[string]calico.Policy
}

func affectedBy(projects map[string]bool, in Input) (affected, string) {
	a := affected{keys: map[string]bool{}, live: map[string]*unstructured.Unstructured{}, specs: map[string]calico.GlobalNetworkPolicySpec{}, desired: map[string]calico.Policy{}}
	for _, u := range in.Managed {
		if isStaged(u.GetKind()) || classOf(u) == calico.ClassHold || classOf(u) == calico.ClassBaseline {
			continue
		}
		k := objectKey(u.GetKind(), u.GetNamespace(), u.GetName())
		spec, err := calico.SpecOf(u)
		if err != nil {
			return a, "policy " + u.GetName() + " cannot be read: " + err.Error()
		}
		a.live[k], a.specs[k] = u, spec
		if matchesProjects(spec, projects) {
			a.keys[k] = true
		}
	}
	for _, p := range in.Desired.Policies {
		if !p.Staged && p.Class == calico.ClassAllow {
			k := objectKey(p.Kind(), p.Namespace, in.API.StoredNameIn(p.Spec.Tier, p.Name))
			a.desired[k] = p
			if matchesProjects(p.Spec, projects) {
				a.keys[k] = true
			}
		}
	}
	for _, inv := range in.Desired.Invalid {
		for k, u := range a.live {
			if a.keys[k] && in.API.PolicyName(u.GetName()) == inv.Name {
				return a, "policy " + inv.Name + " is invalid: " + inv.Err.Error()
			}
		}
	}
	return a, ""
}

// add plans one policy into its transit form and out of it.
func (forms *transitForms) add(a affected, k string, in Input) string {
	api := in.API
	u := a.live[k]
	d, wanted := a.desired[k]
	var liveSpec, desiredSpec *calico.GlobalNetworkPolicySpec
	if u != nil {
		s := a.specs[k]
		liveSpec = &s
	}
	if wanted {
		desiredSpec = &d.Spec
	}
	spec, ok := transitSpec(liveSpec, desiredSpec)
	tp := d
	if !wanted {
		tp = calico.Policy{Name: api.PolicyName(u.GetName()), Class: calico.ClassAllow, Description: u.GetAnnotations()[calico.DescriptionAnnotation]}
	}
	tp.Spec = spec
	if !ok || calico.Validate(tp) != nil {
		return "no form of policy " + tp.Name + " lets the namespaces move without a gap"
	}
	entered := false
	switch {
	case u == nil:
		forms.enter = append(forms.enter, PolicyWrite{Verb: Create, Name: tp.Name, Class: tp.Class, Object: api.Object(tp), Policy: tp})
		entered = true
	case !Matches(u, tp, in.Canon):
		forms.enter = append(forms.enter, PolicyWrite{Verb: Update, Name: tp.Name, Class: tp.Class, Object: MergeForUpdate(u, api.Object(tp)), Policy: tp})
		entered = true
	}
	switch {
	case !wanted:
		forms.leave = append(forms.leave, PolicyWrite{Verb: Delete, Name: tp.Name, Class: tp.Class, Object: u})
	case entered:
		forms.leave = append(forms.leave, PolicyWrite{Verb: Update, Name: d.Name, Class: d.Class, Object: api.Object(d), Policy: d, OnWritten: true})
	case !Matches(u, d, in.Canon):
		forms.leave = append(forms.leave, PolicyWrite{Verb: Update, Name: d.Name, Class: d.Class, Object: MergeForUpdate(u, api.Object(d)), Policy: d})
	}
	return ""
}
