package policies

import "github.com/calico-pni/calico-pni/calico"

// While several namespaces change project at once, the dataplane sees
// their new project labels one namespace at a time: for a moment one of
// two namespaces moving together from project A to project B is in B and
// the other still in A, and the pair, which both A and B let talk, cannot.
// So such a move goes through transit labels: each moving namespace first
// gets calico-pni.io/project-before (its old project) and
// calico-pni.io/project-after (its new one), the policies that match
// projects then match members by these labels while they exist, and only
// then do the project labels change. A namespace in transit counts as a
// member of its old project for the rules of the state before the move,
// and of its new project for the rules of the state after it, whatever its
// project label says at the moment (package plan writes the labels and
// the policies' transit forms in an order that keeps this true at every
// step).

// MemberBefore selects the namespaces that count as members of a project
// in the state before a move: those in transit from it, and those in it
// that are not in transit.
func MemberBefore(project string) calico.Selector {
	return calico.Or(calico.Eq(ProjectBeforeLabel, project), settledIn(project))
}

// MemberAfter selects the namespaces that count as members of a project in
// the state after a move: those in transit to it, and those in it that are
// not in transit.
func MemberAfter(project string) calico.Selector {
	return calico.Or(calico.Eq(ProjectAfterLabel, project), settledIn(project))
}

func settledIn(project string) calico.Selector {
	return calico.And(inProject(project), calico.Not(calico.Has(ProjectBeforeLabel)), calico.Not(calico.Has(ProjectAfterLabel)))
}

// InTransit rewrites a selector that matches namespaces by project so that
// it matches members as member does (MemberBefore or MemberAfter): every
// comparison on calico-pni.io/project becomes the same comparison on
// membership. It reports whether the selector compared projects at all.
func InTransit(s calico.Selector, member func(string) calico.Selector) (calico.Selector, bool) {
	found := false
	out := calico.ReplaceTerms(s, ProjectLabel, func(t calico.Term) calico.Selector {
		found = true
		switch t.Op {
		case "==":
			return member(t.Values[0])
		case "!=":
			return calico.Not(member(t.Values[0]))
		case "in", "not in":
			xs := make([]calico.Selector, len(t.Values))
			for i, v := range t.Values {
				xs[i] = member(v)
			}
			if t.Op == "not in" {
				return calico.Not(calico.Or(xs...))
			}
			return calico.Or(xs...)
		}
		// has(project) and pattern comparisons are not part of calico-pni's
		// policies; they keep reading the project label.
		return rebuild(t)
	})
	return out, found
}

func rebuild(t calico.Term) calico.Selector {
	switch t.Op {
	case "has":
		return calico.Has(t.Key)
	case "starts with":
		return calico.StartsWith(t.Key, t.Values[0])
	case "ends with":
		return calico.EndsWith(t.Key, t.Values[0])
	case "contains":
		return calico.Contains(t.Key, t.Values[0])
	}
	return calico.Eq(t.Key, t.Values[0])
}
