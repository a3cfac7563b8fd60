package calico

import (
	"reflect"
	"strings"
	"testing"
)

func TestSelectorString(t *testing.T) {
	tests := []struct {
		sel  Selector
		want string
	}{
		{Eq("field.cattle.io/projectId", "p-b6jcw"), "field.cattle.io/projectId == 'p-b6jcw'"},
		{NotEq("a", "x"), "a != 'x'"},
		{Has("network-policy/role_redis"), "has(network-policy/role_redis)"},
		{In("k", "b", "a", "b"), "k in {'a', 'b'}"},
		{NotIn("k", "x"), "k not in {'x'}"},
		{Eq("k", "it's"), `k == "it's"`},
		{And(Eq("a", "1"), Or(Has("b"), Has("c"))), "a == '1' && (has(b) || has(c))"},
		{Or(And(Has("a"), Has("b")), Has("c")), "has(a) && has(b) || has(c)"},
		{Not(And(Has("a"), Has("b"))), "!(has(a) && has(b))"},
		{Not(Has("a")), "!has(a)"},
		{Glob("projectcalico.org/name", "cattle-*"), "projectcalico.org/name starts with 'cattle-'"},
		{Glob("n", "*-monitoring"), "n ends with '-monitoring'"},
		{Glob("n", "cattle-project-*-monitoring"), "n starts with 'cattle-project-' && n ends with '-monitoring'"},
		{Glob("n", "exact"), "n == 'exact'"},
		{Glob("n", "*"), "has(n)"},
		{MatchLabels(map[string]string{"z": "1", "a": "2"}), "a == '2' && z == '1'"},
		{MatchLabels(nil), "all()"},
		{And(Has("only")), "has(only)"},
	}
	for _, tt := range tests {
		if got := tt.sel.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"project": "p-a", "role": "db", "name": "cattle-system"}
	tests := []struct {
		sel  Selector
		want bool
	}{
		{Eq("project", "p-a"), true},
		{Eq("project", "p-b"), false},
		{Eq("absent", ""), false},
		{NotEq("project", "p-b"), true},
		{NotEq("absent", "x"), true}, // != matches an absent label in Calico
		{In("role", "db", "web"), true},
		{In("absent", "db"), false},
		{NotIn("absent", "db"), true}, // not in matches an absent label too
		{NotIn("role", "db"), false},
		{Has("role"), true},
		{Has("absent"), false},
		{Not(Has("absent")), true},
		{StartsWith("name", "cattle-"), true},
		{EndsWith("name", "-system"), true},
		{Contains("name", "tle-sys"), true},
		{StartsWith("absent", ""), false},
		{And(Has("role"), Eq("project", "p-a")), true},
		{And(Has("role"), Eq("project", "p-b")), false},
		{Or(Has("absent"), Eq("project", "p-a")), true},
		{All(), true},
	}
	for _, tt := range tests {
		if got := tt.sel.Matches(labels); got != tt.want {
			t.Errorf("%s matches %v = %v, want %v", tt.sel, labels, got, tt.want)
		}
	}
}

// The parser builds the expression the text means (operators, precedence,
// values), and its printed form parses back to the same expression.
func TestParseSelectorStructure(t *testing.T) {
	tests := []struct {
		in   string
		want Selector
	}{
		{"calico-pni.io/isolated == 'true'", Eq("calico-pni.io/isolated", "true")},
		{`a == "x" && b != 'y'`, And(Eq("a", "x"), NotEq("b", "y"))},
		{"has(network-policy/role_redis) || has(network-policy/allow_redis)", Or(Has("network-policy/role_redis"), Has("network-policy/allow_redis"))},
		{"k in {'b', 'a'} && k2 not in {'c'}", And(In("k", "a", "b"), NotIn("k2", "c"))},
		// && binds tighter than ||; ! applies to what follows it.
		{"!(has(a) && has(b)) || c starts with 'x' && d ends with 'y' && e contains 'z'",
			Or(Not(And(Has("a"), Has("b"))), And(StartsWith("c", "x"), EndsWith("d", "y"), Contains("e", "z")))},
		{"a == 'x' || b == 'y' && c == 'z'", Or(Eq("a", "x"), And(Eq("b", "y"), Eq("c", "z")))},
		{"(a == 'x' || b == 'y') && c == 'z'", And(Or(Eq("a", "x"), Eq("b", "y")), Eq("c", "z"))},
		{"all()", All()},
		{"", All()},
		{"((a == 'b'))", Eq("a", "b")},
		{"!!has(a)", Not(Not(Has("a")))},
		{"a startswith 'x'", StartsWith("a", "x")},
		{"has( a )", Has("a")},
		{"global() || has(x)", Or(Global(), Has("x"))},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSelector(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		again, err := ParseSelector(got.String())
		if err != nil || !reflect.DeepEqual(again, tt.want) {
			t.Errorf("%q printed as %q, which parses to %#v (%v)", tt.in, got.String(), again, err)
		}
	}
}

func TestParseSelectorErrors(t *testing.T) {
	bad := map[string]string{
		"a ==":                                "needs a quoted value",
		"a == b":                              "needs a quoted value",
		"a = 'b'":                             "unexpected character",
		"a == 'b":                             "unterminated string",
		"(a == 'b'":                           "missing ')'",
		"a == 'b' &&":                         "unexpected end of selector",
		"a in 'b'":                            "needs a set in braces",
		"a in {'b' 'c'}":                      "expected ',' or '}'",
		"a in {b}":                            "values must be quoted",
		"has(a) has(b)":                       "unexpected",
		"a":                                   "must be followed by an operator",
		"&& a == 'b'":                         "unexpected",
		"a == 'b' || $":                       "unexpected character",
		"network-policy/ingress == 'nginx' )": "unexpected",
	}
	for in, want := range bad {
		_, err := ParseSelector(in)
		if err == nil {
			t.Errorf("ParseSelector(%q) succeeded, want error containing %q", in, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSelector(%q) = %v, want it to contain %q", in, err, want)
		}
	}
}

func TestCheckSelector(t *testing.T) {
	if err := CheckSelector(Eq("bad key!", "x")); err == nil || !strings.Contains(err.Error(), "bad key!") {
		t.Errorf("a key with '!' passed: %v", err)
	}
	if err := CheckSelector(Eq("k", `both ' and "`)); err == nil || !strings.Contains(err.Error(), "both kinds of quote") {
		t.Errorf("a value with both quotes passed: %v", err)
	}
	if err := CheckSelector(Eq("k", "a\nb")); err == nil {
		t.Error("a value with a newline passed")
	}
	long := make([]string, 200)
	for i := range long {
		long[i] = "namespace-number"
	}
	if err := CheckSelector(In("k", append(long, "x")...)); err != nil {
		t.Errorf("a short set failed: %v", err)
	}
	var values []string
	for i := range 100 {
		values = append(values, strings.Repeat("x", 10)+string(rune('a'+i%26))+strings.Repeat("y", i%7))
	}
	if err := CheckSelector(In("k", values...)); err == nil || !strings.Contains(err.Error(), "at most 1024") {
		t.Errorf("a selector over 1024 characters passed: %v", err)
	}
}

// FuzzParseSelector checks that the parser never panics, and that whatever
// it accepts prints as text it parses back to the same expression.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"a == 'b'", "has(x) && !(y in {'1', '2'})", "n starts with 'c' || m ends with \"d\"", "all()", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSelector(in)
		if err != nil {
			return
		}
		again, err := ParseSelector(s.String())
		if err != nil {
			t.Fatalf("%q parsed, but its printed form %q does not: %v", in, s.String(), err)
		}
		if again.String() != s.String() {
			t.Fatalf("%q: printed %q, reparsed and printed %q", in, s.String(), again.String())
		}
	})
}
