package calico

// Rewriting selectors the way Calico's datastore layer does before Felix
// sees them. A namespaceSelector or serviceAccountSelector is evaluated by
// Felix as an ordinary selector on the endpoint's labels, after every label
// key got the prefix of the profile the labels come from ("pcns." for the
// namespace, "pcsa." for the service account) and all() or global() were
// replaced (libcalico-go syncersv1/updateprocessors: selectors.go,
// rules.go, globalnetworkpolicyprocessor.go).

// Prefixed returns s with prefix put before every label key, all()
// replaced by whenAll and global() by whenGlobal (a nil replacement
// leaves the term as it is).
func Prefixed(s Selector, prefix string, whenAll, whenGlobal Selector) Selector {
	switch x := s.(type) {
	case allSel:
		if whenAll != nil {
			return whenAll
		}
		return x
	case globalSel:
		if whenGlobal != nil {
			return whenGlobal
		}
		return x
	case hasSel:
		return hasSel{prefix + x.key}
	case cmpSel:
		return cmpSel{prefix + x.key, x.op, x.value}
	case setSel:
		return setSel{prefix + x.key, x.not, x.values}
	case notSel:
		return notSel{Prefixed(x.x, prefix, whenAll, whenGlobal)}
	case andSel:
		return andSel{prefixedAll(x.xs, prefix, whenAll, whenGlobal)}
	case orSel:
		return orSel{prefixedAll(x.xs, prefix, whenAll, whenGlobal)}
	}
	return s
}

func prefixedAll(xs []Selector, prefix string, whenAll, whenGlobal Selector) []Selector {
	out := make([]Selector, len(xs))
	for i, x := range xs {
		out[i] = Prefixed(x, prefix, whenAll, whenGlobal)
	}
	return out
}

// Term is one comparison of a selector on one label key: "has", "==",
// "!=", "in", "not in", "starts with", "ends with" or "contains", with its
// values. Two label values that give the same result for every term on a
// key are alike for every selector made of those terms.
type Term struct {
	Key    string
	Op     string
	Values []string
}

// Matches evaluates the term alone on a set of labels.
func (t Term) Matches(labels map[string]string) bool {
	switch t.Op {
	case "has":
		return hasSel{t.Key}.Matches(labels)
	case "in", "not in":
		return setSel{t.Key, t.Op == "not in", t.Values}.Matches(labels)
	}
	return cmpSel{t.Key, t.Op, t.Values[0]}.Matches(labels)
}

// Terms calls fn with every comparison in s. all() and global() are not
// comparisons and are left out.
func Terms(s Selector, fn func(Term)) {
	switch x := s.(type) {
	case hasSel:
		fn(Term{Key: x.key, Op: "has"})
	case cmpSel:
		fn(Term{Key: x.key, Op: x.op, Values: []string{x.value}})
	case setSel:
		op := "in"
		if x.not {
			op = "not in"
		}
		fn(Term{Key: x.key, Op: op, Values: x.values})
	case notSel:
		Terms(x.x, fn)
	case andSel:
		for _, y := range x.xs {
			Terms(y, fn)
		}
	case orSel:
		for _, y := range x.xs {
			Terms(y, fn)
		}
	}
}

// UsesGlobal reports whether s contains global(), which Calico accepts only
// in the namespaceSelector of a rule.
func UsesGlobal(s Selector) bool {
	switch x := s.(type) {
	case globalSel:
		return true
	case notSel:
		return UsesGlobal(x.x)
	case andSel:
		for _, y := range x.xs {
			if UsesGlobal(y) {
				return true
			}
		}
	case orSel:
		for _, y := range x.xs {
			if UsesGlobal(y) {
				return true
			}
		}
	}
	return false
}

// RequiredEqs returns the comparisons key == value that must all hold for
// s to match: s itself, or the parts of a top-level &&. An index of
// selectors by such a term finds the few that can match a label set
// without evaluating all of them.
func RequiredEqs(s Selector) [][2]string {
	switch x := s.(type) {
	case cmpSel:
		if x.op == "==" {
			return [][2]string{{x.key, x.value}}
		}
	case andSel:
		var out [][2]string
		for _, y := range x.xs {
			out = append(out, RequiredEqs(y)...)
		}
		return out
	}
	return nil
}

// ReplaceTerms returns s with every comparison on key replaced by what fn
// returns for it (fn is called with the term; all() and global() are left
// as they are). The result is rebuilt with And, Or and Not, so it prints
// as any other selector.
func ReplaceTerms(s Selector, key string, fn func(Term) Selector) Selector {
	switch x := s.(type) {
	case hasSel:
		if x.key == key {
			return fn(Term{Key: x.key, Op: "has"})
		}
	case cmpSel:
		if x.key == key {
			return fn(Term{Key: x.key, Op: x.op, Values: []string{x.value}})
		}
	case setSel:
		if x.key == key {
			op := "in"
			if x.not {
				op = "not in"
			}
			return fn(Term{Key: x.key, Op: op, Values: x.values})
		}
	case notSel:
		return Not(ReplaceTerms(x.x, key, fn))
	case andSel:
		out := make([]Selector, len(x.xs))
		for i, y := range x.xs {
			out[i] = ReplaceTerms(y, key, fn)
		}
		return And(out...)
	case orSel:
		out := make([]Selector, len(x.xs))
		for i, y := range x.xs {
			out[i] = ReplaceTerms(y, key, fn)
		}
		return Or(out...)
	}
	return s
}

// OrTerms returns the parts of a selector joined by || at its top (nested
// ||s flattened), or the selector itself.
func OrTerms(s Selector) []Selector {
	x, ok := s.(orSel)
	if !ok {
		return []Selector{s}
	}
	var out []Selector
	for _, y := range x.xs {
		out = append(out, OrTerms(y)...)
	}
	return out
}
