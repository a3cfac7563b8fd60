package plan

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// A pass writes in steps. Each step finishes, and its results are checked,
// before the next begins, and a failed write stops the steps after it
// (a failed widening write only holds the namespaces that need it; see
// pass). The order keeps calico-pni's safety promise: at no moment is a
// connection denied that both the state before the pass and the state
// after it allow, nor allowed that both deny.
//
//  1. hold: when isolation is switched on or off in one direction
//     (isolateEgress), a hold-open policy keeps that direction as it is
//     for isolated namespaces (policies.HoldOpen);
//  2. widen: allow policies that permit more: new ones, updates that only
//     add, and for updates that add and remove, the union of the old and
//     the new policy;
//  3. namespaces: labels and status; a namespace is switched into
//     isolation only once every policy it needs is in place, and out of
//     isolation here, before anything it relies on goes;
//  4. baseline: the deny baseline is created, changed or deleted;
//  5. narrow: allow policies that permit less: the final form after a
//     union, updates that only remove, deletes;
//  6. release: the hold-open policies go.
//
// Allow policies hold Allow (or, in calico-pni's own tier, Pass) rules
// only, so a policy permits at least what another permits when it selects
// the same endpoints in at least the same directions and begins with the
// other's rules (covers): every connection that the shorter list decides
// is decided by the same rule in the longer one.

// policyPlan is the policy writes of one pass, by step.
type policyPlan struct {
	hold, widen, baseline, narrow, release []PolicyWrite
	// tierWrites create or update calico-pni's tier, before anything else;
	// tierDeletes remove a tier whose policies are all gone, after
	// everything else.
	tierWrites, tierDeletes []PolicyWrite
	// sufficient names the desired policies whose live copy already
	// permits at least what the desired policy permits: a namespace that
	// needs one may be isolated before the policy is rewritten.
	sufficient map[string]bool
	// late names the desired allow policies that could not be widened
	// first (no union of old and new exists) and are rewritten in the
	// narrowing step; namespaces that need them wait for the next pass.
	late map[string]bool
	// kept names the live policies that are left as they are because
	// their desired form failed validation.
	kept []string
}

// planInput is what planPolicies compares.
type planInput struct {
	// tier is calico-pni's own tier (nil in default-tier mode) and
	// liveTiers the managed Tier objects on the server.
	tier      *calico.Tier
	liveTiers []*unstructured.Unstructured
	desired   []calico.Policy
	// invalid holds the v3 names of policies that failed validation: their
	// live copies are neither updated nor deleted.
	invalid map[string]error
	api     calico.API
	managed []*unstructured.Unstructured
	canon   func(*unstructured.Unstructured) []byte
	// isolatedLive is true when some namespace on the server carries the
	// isolated label, so that switching a direction affects traffic.
	isolatedLive bool
}

// planPolicies sorts every difference between the desired and the managed
// policies into the steps above.
//
// When calico-pni's policies move between the default tier and its own
// (enforcement changes, or Calico is upgraded across 3.29), they appear in
// one tier and leave the other. One tier changes per pass, the one they
// appear in first: in it a hold-open policy, then its policies, then the
// hold goes, and the walls stand in both tiers; the next pass removes them
// from the other, behind a hold-open policy of that tier. Every state in
// between denies what both ends deny and allows what both allow.
func planPolicies(in planInput) policyPlan {
	plan := policyPlan{sufficient: map[string]bool{}, late: map[string]bool{}}
	current := make(map[string]*unstructured.Unstructured, len(in.managed))
	for _, u := range in.managed {
		current[objectKey(u.GetKind(), u.GetNamespace(), u.GetName())] = u
	}
	cov := coverageOf(in)
	for _, p := range in.desired {
		key := objectKey(p.Kind(), p.Namespace, in.api.StoredNameIn(p.Spec.Tier, p.Name))
		cur, ok := current[key]
		delete(current, key)
		plan.planDesired(p, cur, ok, in)
	}
	for _, u := range current {
		plan.planStale(u, in, cov.postponed)
	}
	if in.isolatedLive {
		plan.hold = cov.holds(in.api)
	}
	plan.planTiers(in, cov.postponed)
	for _, steps := range [][]PolicyWrite{plan.hold, plan.widen, plan.baseline, plan.narrow, plan.release} {
		sortChanges(steps)
	}
	slices.Sort(plan.kept)
	return plan
}

// planDesired sorts the write of one desired policy (cur is its live copy,
// if ok).
func (plan *policyPlan) planDesired(p calico.Policy, cur *unstructured.Unstructured, ok bool, in planInput) {
	api := in.api
	switch {
	case p.Staged && !ok:
		// Staged policies decide no traffic: written with the widening
		// writes, so that a namespace they are for is staged once they
		// are in place, and removed with the narrowing ones.
		plan.widen = append(plan.widen, PolicyWrite{Verb: Create, Name: p.Name, Class: p.Class, Object: api.Object(p), Policy: p})
	case p.Staged && !Matches(cur, p, in.canon):
		plan.widen = append(plan.widen, update(cur, p, api))
	case !ok:
		ch := PolicyWrite{Verb: Create, Name: p.Name, Class: p.Class, Object: api.Object(p), Policy: p}
		if p.Class == calico.ClassAllow {
			plan.widen = append(plan.widen, ch)
		} else {
			plan.baseline = append(plan.baseline, ch)
		}
	case p.Class == calico.ClassHandover:
		plan.planHandover(cur, p, in)
	case Matches(cur, p, in.canon):
		plan.sufficient[p.Name] = true
	case p.Class != calico.ClassAllow:
		plan.baseline = append(plan.baseline, update(cur, p, api))
	default:
		plan.planAllowUpdate(cur, p, api)
	}
}

// planStale sorts the delete of a live policy calico-pni no longer wants.
func (plan *policyPlan) planStale(u *unstructured.Unstructured, in planInput, postponed map[string]bool) {
	name := in.api.PolicyName(u.GetName())
	if _, bad := in.invalid[name]; bad {
		plan.kept = append(plan.kept, name)
		return
	}
	if postponed[tierOf(u)] && classOf(u) != calico.ClassHold && !isStaged(u.GetKind()) {
		return
	}
	ch := PolicyWrite{Verb: Delete, Name: name, Class: classOf(u), Object: u}
	switch {
	case isStaged(u.GetKind()):
		plan.narrow = append(plan.narrow, ch)
	case ch.Class == calico.ClassHold:
		plan.release = append(plan.release, ch)
	case ch.Class == calico.ClassBaseline:
		plan.baseline = append(plan.baseline, ch)
	default:
		// Allow policies, and anything whose class label was tampered
		// with, go last: deleting late never denies what the end state
		// allows.
		plan.narrow = append(plan.narrow, ch)
	}
}

// tierDir is one direction of calico-pni's policies in one tier.
type tierDir struct {
	tier string
	dir  calico.PolicyType
}

// coverage is which tiers and directions calico-pni's policies cover,
// live and wanted (hold-open and staged policies left out), the hold-open
// policies in place, and the tiers whose removal waits for the next pass.
type coverage struct {
	liveDirs, wantDirs map[tierDir]bool
	liveTier, wantTier map[string]bool
	liveHold           map[string]bool
	postponed          map[string]bool
}

func coverageOf(in planInput) coverage {
	c := coverage{liveDirs: map[tierDir]bool{}, wantDirs: map[tierDir]bool{}, liveTier: map[string]bool{}, wantTier: map[string]bool{},
		liveHold: map[string]bool{}, postponed: map[string]bool{}}
	for _, u := range in.managed {
		switch {
		case classOf(u) == calico.ClassHold:
			c.liveHold[u.GetName()] = true
		case isStaged(u.GetKind()), classOf(u) == calico.ClassHandover:
			// Staged policies decide no traffic; the copies of Rancher's
			// policies are not calico-pni's walls.
		default:
			t := tierOf(u)
			c.liveTier[t] = true
			for _, d := range typesOf(u) {
				c.liveDirs[tierDir{t, d}] = true
			}
		}
	}
	for _, p := range in.desired {
		if p.Staged || p.Class == calico.ClassHandover {
			continue
		}
		t := canonicalTier(p.Spec.Tier)
		c.wantTier[t] = true
		for _, d := range p.Spec.Types {
			c.wantDirs[tierDir{t, d}] = true
		}
	}
	appearing := false
	for t := range c.wantTier {
		appearing = appearing || !c.liveTier[t]
	}
	for t := range c.liveTier {
		if appearing && !c.wantTier[t] {
			c.postponed[t] = true
		}
	}
	return c
}

// holds returns the hold-open policies a pass needs: one for each
// direction of a tier that calico-pni's policies start or stop covering,
// unless it is in place already.
func (c coverage) holds(api calico.API) []PolicyWrite {
	tiers := slices.Collect(maps.Keys(c.liveTier))
	for t := range c.wantTier {
		if !c.liveTier[t] {
			tiers = append(tiers, t)
		}
	}
	slices.Sort(tiers)
	var out []PolicyWrite
	for _, t := range tiers {
		if c.postponed[t] {
			continue
		}
		for _, d := range []calico.PolicyType{calico.Ingress, calico.Egress} {
			k := tierDir{t, d}
			if c.liveDirs[k] == c.wantDirs[k] {
				continue
			}
			h := policies.HoldOpen(t, d)
			if !c.liveHold[api.StoredNameIn(h.Spec.Tier, h.Name)] {
				out = append(out, PolicyWrite{Verb: Create, Name: h.Name, Class: h.Class, Object: api.Object(h), Policy: h})
			}
		}
	}
	return out
}

// planTiers creates or updates calico-pni's tier before anything else, and
// deletes a managed tier once none of calico-pni's policies will be left
// in it.
func (plan *policyPlan) planTiers(in planInput, postponed map[string]bool) {
	live := map[string]*unstructured.Unstructured{}
	for _, u := range in.liveTiers {
		live[u.GetName()] = u
	}
	if t := in.tier; t != nil {
		want := in.api.TierObject(*t)
		switch cur, ok := live[t.Name]; {
		case !ok:
			plan.tierWrites = append(plan.tierWrites, PolicyWrite{Verb: Create, Name: t.Name, Class: classTier, Object: want})
		case !tierMatches(cur, *t):
			plan.tierWrites = append(plan.tierWrites, PolicyWrite{Verb: Update, Name: t.Name, Class: classTier, Object: MergeForUpdate(cur, want)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(live)) {
		if (in.tier != nil && name == in.tier.Name) || postponed[name] {
			continue
		}
		plan.tierDeletes = append(plan.tierDeletes, PolicyWrite{Verb: Delete, Name: name, Class: classTier, Object: live[name]})
	}
}

// objectKey identifies a stored policy: kind, namespace and name.
func objectKey(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// isStaged reports whether a kind is one of Calico's staged policy kinds.
func isStaged(kind string) bool { return strings.HasPrefix(kind, "Staged") }

// classTier marks the writes of Tier objects.
const classTier calico.Class = "tier"

// tierMatches compares a managed Tier with the desired one on what
// calico-pni owns: its label, description and spec.
func tierMatches(cur *unstructured.Unstructured, t calico.Tier) bool {
	if cur.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue || cur.GetAnnotations()[calico.DescriptionAnnotation] != t.Description {
		return false
	}
	spec, err := calico.TierSpecOf(cur)
	return err == nil && calico.TierSpecEqual(spec, t.Spec)
}

// tierOf reads the tier of a stored policy ("default" when it names none).
func tierOf(u *unstructured.Unstructured) string {
	t, _, _ := unstructured.NestedString(u.Object, "spec", "tier")
	return canonicalTier(t)
}

func canonicalTier(t string) string {
	if t == "" {
		return calico.DefaultTier
	}
	return t
}

// planAllowUpdate sorts an update of an allow policy: widening, narrowing,
// or both (then the union first and the final form last).
func (plan *policyPlan) planAllowUpdate(cur *unstructured.Unstructured, p calico.Policy, api calico.API) {
	live, err := calico.SpecOf(cur)
	if err != nil || classOf(cur) != calico.ClassAllow {
		// An unreadable or relabelled copy is not what Calico enforces as
		// calico-pni's: writing the desired one first can only help.
		plan.widen = append(plan.widen, update(cur, p, api))
		return
	}
	switch {
	case covers(p.Spec, live):
		plan.widen = append(plan.widen, update(cur, p, api))
	case covers(live, p.Spec):
		plan.narrow = append(plan.narrow, update(cur, p, api))
		plan.sufficient[p.Name] = true
	default:
		if u, ok := unionSpec(live, p.Spec); ok {
			wide := p
			wide.Spec = u
			plan.widen = append(plan.widen, update(cur, wide, api))
			final := update(cur, p, api)
			final.OnWritten = true
			plan.narrow = append(plan.narrow, final)
			return
		}
		plan.narrow = append(plan.narrow, update(cur, p, api))
		plan.late[p.Name] = true
	}
}

func update(cur *unstructured.Unstructured, p calico.Policy, api calico.API) PolicyWrite {
	return PolicyWrite{Verb: Update, Name: p.Name, Class: p.Class, Object: MergeForUpdate(cur, api.Object(p)), Policy: p}
}

func sortChanges(changes []PolicyWrite) {
	slices.SortFunc(changes, func(a, b PolicyWrite) int {
		return cmp.Or(cmp.Compare(a.Object.GetNamespace(), b.Object.GetNamespace()), cmp.Compare(a.Object.GetName(), b.Object.GetName()))
	})
}

// classOf reads the class label of a managed object.
func classOf(u *unstructured.Unstructured) calico.Class {
	return calico.Class(u.GetLabels()[calico.ClassLabel])
}

// typesOf reads spec.types of a stored policy without decoding the rest.
func typesOf(u *unstructured.Unstructured) []calico.PolicyType {
	raw, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "types")
	out := make([]calico.PolicyType, 0, len(raw))
	for _, t := range raw {
		out = append(out, calico.PolicyType(t))
	}
	return out
}

// covers reports whether a permits at least what b permits: the same
// endpoints selected, at least b's directions, and in each direction b's
// rules at the start of a's.
func covers(a, b calico.GlobalNetworkPolicySpec) bool {
	if !sameSelection(a, b) {
		return false
	}
	for _, t := range b.Types {
		if !slices.Contains(a.Types, t) {
			return false
		}
	}
	return rulesPrefix(b.Ingress, a.Ingress) && rulesPrefix(b.Egress, a.Egress)
}

// sameSelection compares what decides which endpoints a policy applies to
// and where it stands in the evaluation order.
func sameSelection(a, b calico.GlobalNetworkPolicySpec) bool {
	a.Types, a.Ingress, a.Egress = nil, nil, nil
	b.Types, b.Ingress, b.Egress = nil, nil, nil
	return calico.SpecEqual(a, b)
}

func rulesPrefix(prefix, rules []calico.Rule) bool {
	if len(prefix) > len(rules) {
		return false
	}
	for i := range prefix {
		if !ruleEqual(prefix[i], rules[i]) {
			return false
		}
	}
	return true
}

func ruleEqual(a, b calico.Rule) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// unionSpec returns a policy that permits what old or new permits and
// nothing else: old's rules followed by new's other rules (first match
// decides, so every connection gets old's verdict or new's). When the two
// select different endpoints, each rule is pinned to the endpoints of its
// own policy (ingress rules by their destination, egress rules by their
// source), and the union selects the endpoints of both; the extra
// endpoints it selects are isolated namespaces' pods, already under the
// baseline, so selecting them changes nothing. It reports false when no
// such policy can be written.
func unionSpec(old, new calico.GlobalNetworkPolicySpec) (calico.GlobalNetworkPolicySpec, bool) {
	u := new
	u.Types = nil
	for _, t := range []calico.PolicyType{calico.Ingress, calico.Egress} {
		if slices.Contains(old.Types, t) || slices.Contains(new.Types, t) {
			u.Types = append(u.Types, t)
		}
	}
	if sameSelection(old, new) {
		u.Ingress = unionRules(old.Ingress, new.Ingress, nil, nil)
		u.Egress = unionRules(old.Egress, new.Egress, nil, nil)
		return u, true
	}
	sameOrder := (old.Order == nil) == (new.Order == nil) && (old.Order == nil || *old.Order == *new.Order)
	if old.NamespaceSelector == "" || new.NamespaceSelector == "" || old.ServiceAccountSelector != "" || new.ServiceAccountSelector != "" ||
		!sameOrder || old.Tier != new.Tier || old.DoNotTrack || old.PreDNAT || old.ApplyOnForward {
		return u, false
	}
	u.NamespaceSelector = orSelectors(old.NamespaceSelector, new.NamespaceSelector)
	u.Selector = ""
	if old.Selector != "" && new.Selector != "" {
		u.Selector = orSelectors(old.Selector, new.Selector)
	}
	ok := true
	pin := func(spec calico.GlobalNetworkPolicySpec, ingress bool) func(calico.Rule) calico.Rule {
		return func(r calico.Rule) calico.Rule {
			e := &r.Source
			if ingress {
				e = &r.Destination
			}
			if e.Services != nil {
				// A services match cannot be combined with selectors.
				ok = false
			}
			e.NamespaceSelector = andSelectors(e.NamespaceSelector, spec.NamespaceSelector)
			e.Selector = andSelectors(e.Selector, spec.Selector)
			return r
		}
	}
	u.Ingress = unionRules(old.Ingress, new.Ingress, pin(old, true), pin(new, true))
	u.Egress = unionRules(old.Egress, new.Egress, pin(old, false), pin(new, false))
	if !ok {
		return u, false
	}
	if err := calico.Validate(calico.Policy{Name: "union", Class: calico.ClassAllow, Spec: u}); err != nil {
		return u, false
	}
	return u, true
}

// unionRules returns old's rules, then new's rules that old lacks, each
// passed through its side's pin (nil: as it is).
func unionRules(old, new []calico.Rule, pinOld, pinNew func(calico.Rule) calico.Rule) []calico.Rule {
	var out []calico.Rule
	for _, r := range old {
		if pinOld != nil {
			r = pinOld(r)
		}
		out = append(out, r)
	}
	for _, r := range new {
		if slices.ContainsFunc(old, func(o calico.Rule) bool { return ruleEqual(o, r) }) {
			continue
		}
		if pinNew != nil {
			r = pinNew(r)
		}
		out = append(out, r)
	}
	return out
}

func orSelectors(a, b string) string { return "(" + a + ") || (" + b + ")" }

func andSelectors(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") && (" + b + ")"
}

// planHandover keeps the copy of a namespace's Rancher policies
// (policies/handover.go) at least as wide as it was: while Rancher's
// policies are deleted one by one the desired copy shrinks, and the live
// one must not, until the generator wants none. The copy written is the
// live one with the desired one's rules and pod selections added.
func (plan *policyPlan) planHandover(cur *unstructured.Unstructured, p calico.Policy, in planInput) {
	live, err := calico.SpecOf(cur)
	if err == nil && classOf(cur) == calico.ClassHandover {
		p.Spec = handoverUnion(live, p.Spec)
	}
	if Matches(cur, p, in.canon) {
		plan.sufficient[p.Name] = true
		return
	}
	plan.widen = append(plan.widen, update(cur, p, in.api))
}

// handoverUnion is a copy that admits what either copy admits: the pod
// selections joined, the rules of both (each pinned to its own pods).
func handoverUnion(live, want calico.GlobalNetworkPolicySpec) calico.GlobalNetworkPolicySpec {
	out := want
	out.Selector = policies.OrSelectors([]string{live.Selector, want.Selector})
	out.Types = nil
	for _, t := range []calico.PolicyType{calico.Ingress, calico.Egress} {
		if slices.Contains(live.Types, t) || slices.Contains(want.Types, t) {
			out.Types = append(out.Types, t)
		}
	}
	out.Ingress = unionRules(live.Ingress, want.Ingress, nil, nil)
	out.Egress = unionRules(live.Egress, want.Egress, nil, nil)
	return out
}
