package calico

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Selector is a Calico selector expression built from typed parts. Values
// are quoted by String, so a label value can never change the meaning of
// the expression around it. Build selectors with the functions below; parse
// existing text with ParseSelector.
type Selector interface {
	// String renders the expression in Calico's selector syntax.
	String() string
	// Matches evaluates the expression against a set of labels, with
	// Calico's semantics (for example, != also matches an absent label).
	Matches(labels map[string]string) bool
	// check reports the first key or value Calico would not accept.
	check() error
	// precedence orders operators for printing: 0 or, 1 and, 2 the rest.
	precedence() int
	// keys calls fn with every label key the expression reads.
	keys(fn func(string))
}

// Keys returns the label keys a selector reads, sorted and without
// repeats. Two label sets that agree on these keys match alike.
func Keys(s Selector) []string {
	var out []string
	s.keys(func(k string) { out = append(out, k) })
	slices.Sort(out)
	return slices.Compact(out)
}

// Labels Calico adds to every namespace and workload endpoint, usable in
// namespaceSelector (namespaces) and selector (pods).
const (
	// NameLabel holds the namespace name in a namespaceSelector.
	NameLabel = "projectcalico.org/name"
	// NamespaceLabel holds a pod's namespace in a pod selector.
	NamespaceLabel = "projectcalico.org/namespace"
	// ServiceAccountLabel holds a pod's service account in a pod selector.
	ServiceAccountLabel = "projectcalico.org/serviceaccount"
	// OrchestratorLabel is "k8s" on every pod's endpoint; Calico's
	// conversion of Kubernetes NetworkPolicies selects pods with it.
	OrchestratorLabel = "projectcalico.org/orchestrator"
)

// MaxSelectorLength is the longest selector Calico accepts.
const MaxSelectorLength = 1024

type (
	allSel    struct{}
	globalSel struct{}
	hasSel    struct{ key string }
	cmpSel    struct{ key, op, value string }
	setSel    struct {
		key    string
		not    bool
		values []string
	}
	notSel struct{ x Selector }
	andSel struct{ xs []Selector }
	orSel  struct{ xs []Selector }
)

// All matches everything. calico-pni never uses it at the top of a policy.
func All() Selector { return allSel{} }

// Global matches endpoints that are in no namespace (host endpoints and
// global network sets), never a pod. Calico accepts global() only in the
// namespaceSelector of a rule, where its libcalico-go rule conversion
// (syncersv1/updateprocessors/rules.go) turns it into
// !has(projectcalico.org/namespace); Matches follows that meaning.
func Global() Selector { return globalSel{} }

// Has matches when key is present.
func Has(key string) Selector { return hasSel{key} }

// Eq matches key == value.
func Eq(key, value string) Selector { return cmpSel{key, "==", value} }

// NotEq matches key != value, which includes an absent key.
func NotEq(key, value string) Selector { return cmpSel{key, "!=", value} }

// StartsWith matches a present key whose value starts with prefix.
func StartsWith(key, prefix string) Selector { return cmpSel{key, "starts with", prefix} }

// EndsWith matches a present key whose value ends with suffix.
func EndsWith(key, suffix string) Selector { return cmpSel{key, "ends with", suffix} }

// Contains matches a present key whose value contains part.
func Contains(key, part string) Selector { return cmpSel{key, "contains", part} }

// In matches a present key whose value is one of values. Values are sorted
// and de-duplicated so equal sets print alike.
func In(key string, values ...string) Selector { return setSel{key, false, sortedSet(values)} }

// NotIn matches key absent or not one of values.
func NotIn(key string, values ...string) Selector { return setSel{key, true, sortedSet(values)} }

// Not negates x.
func Not(x Selector) Selector { return notSel{x} }

// And matches when every part matches. One part is returned as it is.
func And(xs ...Selector) Selector {
	if len(xs) == 1 {
		return xs[0]
	}
	return andSel{xs}
}

// Or matches when any part matches. One part is returned as it is.
func Or(xs ...Selector) Selector {
	if len(xs) == 1 {
		return xs[0]
	}
	return orSel{xs}
}

// MatchLabels turns a label map into key == 'value' terms joined by &&,
// in key order.
func MatchLabels(labels map[string]string) Selector {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	xs := make([]Selector, 0, len(keys))
	for _, k := range keys {
		xs = append(xs, Eq(k, labels[k]))
	}
	if len(xs) == 0 {
		return All()
	}
	return And(xs...)
}

// Glob matches key against a pattern with at most one '*': "cattle-*",
// "*-monitoring", "cattle-project-*-monitoring", or an exact value.
func Glob(key, pattern string) Selector {
	prefix, suffix, found := strings.Cut(pattern, "*")
	switch {
	case !found:
		return Eq(key, pattern)
	case prefix == "" && suffix == "":
		return Has(key)
	case suffix == "":
		return StartsWith(key, prefix)
	case prefix == "":
		return EndsWith(key, suffix)
	default:
		return And(StartsWith(key, prefix), EndsWith(key, suffix))
	}
}

// CheckSelector reports the first key, value or length Calico would reject.
func CheckSelector(s Selector) error {
	if err := s.check(); err != nil {
		return err
	}
	if n := len(s.String()); n > MaxSelectorLength {
		return fmt.Errorf("selector is %d characters long; Calico accepts at most %d", n, MaxSelectorLength)
	}
	return nil
}

func sortedSet(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}

func (allSel) String() string                 { return "all()" }
func (allSel) Matches(map[string]string) bool { return true }
func (allSel) check() error                   { return nil }
func (allSel) precedence() int                { return 2 }
func (allSel) keys(func(string))              {}

func (globalSel) String() string { return "global()" }
func (globalSel) Matches(l map[string]string) bool {
	_, namespaced := l[NamespaceLabel]
	return !namespaced
}
func (globalSel) check() error      { return nil }
func (globalSel) precedence() int   { return 2 }
func (globalSel) keys(func(string)) {}

func (s hasSel) String() string { return "has(" + s.key + ")" }
func (s hasSel) Matches(l map[string]string) bool {
	_, ok := l[s.key]
	return ok
}
func (s hasSel) check() error         { return checkKey(s.key) }
func (s hasSel) precedence() int      { return 2 }
func (s hasSel) keys(fn func(string)) { fn(s.key) }

func (s cmpSel) String() string { return s.key + " " + s.op + " " + quote(s.value) }
func (s cmpSel) Matches(l map[string]string) bool {
	v, ok := l[s.key]
	switch s.op {
	case "==":
		return ok && v == s.value
	case "!=":
		return !ok || v != s.value
	case "starts with":
		return ok && strings.HasPrefix(v, s.value)
	case "ends with":
		return ok && strings.HasSuffix(v, s.value)
	case "contains":
		return ok && strings.Contains(v, s.value)
	}
	return false
}
func (s cmpSel) check() error {
	if err := checkKey(s.key); err != nil {
		return err
	}
	return checkValue(s.value)
}
func (s cmpSel) precedence() int      { return 2 }
func (s cmpSel) keys(fn func(string)) { fn(s.key) }

func (s setSel) String() string {
	quoted := make([]string, len(s.values))
	for i, v := range s.values {
		quoted[i] = quote(v)
	}
	op := " in {"
	if s.not {
		op = " not in {"
	}
	return s.key + op + strings.Join(quoted, ", ") + "}"
}
func (s setSel) Matches(l map[string]string) bool {
	v, ok := l[s.key]
	in := ok && slices.Contains(s.values, v)
	return in != s.not
}
func (s setSel) check() error {
	if err := checkKey(s.key); err != nil {
		return err
	}
	for _, v := range s.values {
		if err := checkValue(v); err != nil {
			return err
		}
	}
	return nil
}
func (s setSel) precedence() int      { return 2 }
func (s setSel) keys(fn func(string)) { fn(s.key) }

func (s notSel) String() string                   { return "!" + wrap(s.x, 2) }
func (s notSel) Matches(l map[string]string) bool { return !s.x.Matches(l) }
func (s notSel) check() error                     { return s.x.check() }
func (s notSel) precedence() int                  { return 2 }
func (s notSel) keys(fn func(string))             { s.x.keys(fn) }

func (s andSel) String() string { return join(s.xs, " && ", 1) }
func (s andSel) Matches(l map[string]string) bool {
	for _, x := range s.xs {
		if !x.Matches(l) {
			return false
		}
	}
	return true
}
func (s andSel) check() error    { return checkAll(s.xs) }
func (s andSel) precedence() int { return 1 }
func (s andSel) keys(fn func(string)) {
	for _, x := range s.xs {
		x.keys(fn)
	}
}

func (s orSel) String() string { return join(s.xs, " || ", 0) }
func (s orSel) Matches(l map[string]string) bool {
	for _, x := range s.xs {
		if x.Matches(l) {
			return true
		}
	}
	return false
}
func (s orSel) check() error    { return checkAll(s.xs) }
func (s orSel) precedence() int { return 0 }
func (s orSel) keys(fn func(string)) {
	for _, x := range s.xs {
		x.keys(fn)
	}
}

func join(xs []Selector, sep string, prec int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = wrap(x, prec)
	}
	return strings.Join(parts, sep)
}

// wrap puts parentheses around x when its operator binds more loosely than
// the context it is printed in.
func wrap(x Selector, context int) string {
	if x.precedence() < context {
		return "(" + x.String() + ")"
	}
	return x.String()
}

func checkAll(xs []Selector) error {
	if len(xs) == 0 {
		return fmt.Errorf("empty && or || expression")
	}
	for _, x := range xs {
		if err := x.check(); err != nil {
			return err
		}
	}
	return nil
}

// quote prefers single quotes, as Calico's documentation does, and falls
// back to double quotes. Calico has no escapes: a value with both kinds of
// quote cannot be written, and checkValue rejects it.
func quote(v string) string {
	if !strings.Contains(v, "'") {
		return "'" + v + "'"
	}
	return `"` + v + `"`
}

// checkKey accepts Kubernetes label keys (which Calico's tokenizer also
// accepts: letters, digits, '_', '.', '/', '-').
func checkKey(key string) error {
	if _, ok := validKeys.Load(key); ok {
		return nil
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
	}
	if validKeyCount.Add(1) <= maxValidKeys {
		validKeys.Store(key, true)
	}
	return nil
}

// validKeys remembers label keys that passed checkKey: the same few keys
// appear in thousands of selectors. It stops growing at maxValidKeys.
var (
	validKeys     sync.Map
	validKeyCount atomic.Int64
)

const maxValidKeys = 4096

func checkValue(v string) error {
	if strings.Contains(v, "'") && strings.Contains(v, `"`) {
		return fmt.Errorf("value %q holds both kinds of quote; Calico selectors have no escapes", v)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("value %q holds a control character", v)
		}
	}
	return nil
}
