package calico

import (
	"fmt"
	"reflect"
	"testing"
)

// TestGlobal follows Calico's meaning of global(): in a rule's
// namespaceSelector it becomes !has(projectcalico.org/namespace)
// (libcalico-go syncersv1/updateprocessors/rules.go), so it matches
// non-namespaced endpoints (host endpoints, global network sets) and never
// a pod, whose endpoint always carries projectcalico.org/namespace.
func TestGlobal(t *testing.T) {
	s, err := ParseSelector("global()")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "global()" {
		t.Errorf("printed as %q", s)
	}
	pod := map[string]string{NamespaceLabel: "shop", "app": "web"}
	hostEndpoint := map[string]string{"role": "edge"}
	if s.Matches(pod) {
		t.Error("global() matched a pod")
	}
	if !s.Matches(hostEndpoint) {
		t.Error("global() did not match a non-namespaced endpoint")
	}
	or, err := ParseSelector("global() || has(app)")
	if err != nil || !or.Matches(pod) || !UsesGlobal(or) || UsesGlobal(Has("a")) {
		t.Errorf("global() in an expression: %v %v", or, err)
	}
}

// TestPrefixed follows Calico's conversion of namespace and service
// account selectors to endpoint selectors: every key gets the profile's
// prefix (pcns., pcsa.), all() becomes has(projectcalico.org/namespace)
// and global() its negation (libcalico-go syncersv1/updateprocessors,
// selectors.go and rules.go).
func TestPrefixed(t *testing.T) {
	inNamespace := Has(NamespaceLabel)
	tests := []struct {
		in, want string
	}{
		{"a == 'x' && has(b)", "pcns.a == 'x' && has(pcns.b)"},
		{"k in {'a'} || !(k2 starts with 'c')", "pcns.k in {'a'} || !pcns.k2 starts with 'c'"},
		{"all()", "has(projectcalico.org/namespace)"},
		{"global()", "!has(projectcalico.org/namespace)"},
		{"projectcalico.org/name == 'shop'", "pcns.projectcalico.org/name == 'shop'"},
	}
	for _, tt := range tests {
		s, err := ParseSelector(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Prefixed(s, "pcns.", inNamespace, Not(inNamespace)).String(); got != tt.want {
			t.Errorf("Prefixed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	kept := Prefixed(All(), "pcsa.", nil, nil)
	if kept.String() != "all()" {
		t.Errorf("nil replacement changed all(): %s", kept)
	}
}

func TestTerms(t *testing.T) {
	s, err := ParseSelector("a == 'x' && (has(b) || c not in {'1', '2'}) && !d ends with 'z' && all()")
	if err != nil {
		t.Fatal(err)
	}
	var got []Term
	Terms(s, func(term Term) { got = append(got, term) })
	want := []Term{
		{Key: "a", Op: "==", Values: []string{"x"}},
		{Key: "b", Op: "has"},
		{Key: "c", Op: "not in", Values: []string{"1", "2"}},
		{Key: "d", Op: "ends with", Values: []string{"z"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Terms = %+v", got)
	}
	labels := map[string]string{"a": "x", "d": "yz"}
	results := []bool{true, false, true, true}
	for i, term := range got {
		if term.Matches(labels) != results[i] {
			t.Errorf("%+v on %v = %v", term, labels, !results[i])
		}
	}
}

func TestRequiredEqs(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"a == 'x'", "[[a x]]"},
		{"has(b) && (c == 'y' && d == 'z')", "[[c y] [d z]]"},
		{"a == 'x' || b == 'y'", "[]"},
		{"!(a == 'x')", "[]"},
		{"a != 'x'", "[]"},
	}
	for _, tt := range tests {
		s, err := ParseSelector(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(RequiredEqs(s)); got != tt.want {
			t.Errorf("RequiredEqs(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
