package replay

import (
	"strings"
	"testing"
)

// The grammar of Calico selectors, on the labels of one endpoint, with
// what Calico's parser and ast.go say each expression matches.
func TestSelectorMatches(t *testing.T) {
	l := labels{
		"app": "web", "tier": "front-end", "team/name": "shop.io", "empty": "",
		"quote": `it's`, "dq": `say "hi"`,
	}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"   ", true},
		{"all()", true},
		{"all( )", true},
		{"global()", true},
		{"has(app)", true},
		{"has( app )", true},
		{"has(missing)", false},
		{"!has(missing)", true},
		{"!!has(app)", true},
		{"! ! ! has(app)", false},
		{"app == 'web'", true},
		{`app == "web"`, true},
		{"app=='web'", true},
		{"app == 'db'", false},
		{"missing == ''", false},
		{"empty == ''", true},
		{"app != 'db'", true},
		{"app != 'web'", false},
		// != and not in match an absent label.
		{"missing != 'x'", true},
		{"missing not in {'x'}", true},
		{"missing in {'x'}", false},
		{"app in {'db', 'web'}", true},
		{"app in {'db'}", false},
		{"app in {}", false},
		{"app not in {}", true},
		{"app in {'web',}", true},
		{"app not in {'db', 'web'}", false},
		{"app notin {'db'}", true}, // Calico's tokenizer allows "not" and "in" without a space
		{"tier contains 'end'", true},
		{"tier contains 'back'", false},
		{"missing contains ''", false},
		{"tier starts with 'front'", true},
		{"tier starts  with 'end'", false},
		{"tier ends with 'end'", true},
		{"tier ends with 'front'", false},
		{"team/name == 'shop.io'", true},
		{"quote == \"it's\"", true},
		{`dq == 'say "hi"'`, true},
		{"app == 'web' && tier == 'front-end'", true},
		{"app == 'web' && tier == 'back'", false},
		{"app == 'db' || tier == 'front-end'", true},
		{"app == 'db' || tier == 'back'", false},
		// && binds tighter than ||.
		{"app == 'db' && has(app) || has(tier)", true},
		{"app == 'db' && (has(app) || has(tier))", false},
		{"!(app == 'db') && has(tier)", true},
		{"!app == 'web'", false},
		{"((app == 'web'))", true},
		{"\tapp == 'web'\t", true},
	}
	for _, tt := range tests {
		sel, err := parseSelector(tt.sel)
		if err != nil {
			t.Errorf("%q: %v", tt.sel, err)
			continue
		}
		if got := sel.matches(l); got != tt.want {
			t.Errorf("%q on %v: %v, want %v", tt.sel, l, got, tt.want)
		}
	}
}

// Selectors Calico's parser refuses.
func TestSelectorErrors(t *testing.T) {
	for _, sel := range []string{
		"app", "app ==", "app == web", "app = 'web'", "app == 'web", "has(app",
		"has()", "all(", "app == 'web' &&", "app == 'web' & has(x)", "app == 'web' | has(x)",
		"(app == 'web'", "app == 'web')", "app in 'web'", "app in {'web'", "app in {web}",
		"app like 'x'", "app == 'web' has(x)", "app\n== 'web'", "a$b == 'x'",
	} {
		if _, err := parseSelector(sel); err == nil {
			t.Errorf("%q parsed; Calico refuses it", sel)
		} else if !strings.Contains(err.Error(), "selector") {
			t.Errorf("%q: the error %q does not name the selector", sel, err)
		}
	}
}

// How Calico rewrites policy and rule selectors for Felix, checked on
// the endpoint labels of a pod, a NetworkSet and a GlobalNetworkSet.
func TestScopes(t *testing.T) {
	pod := labels{"app": "web", labelNamespace: "shop", labelServiceAccount: "shop", labelOrchestrator: "k8s",
		"pcns.team": "shop", "pcns." + labelName: "shop", "pcsa.role": "frontend", "pcsa." + labelName: "shop"}
	netset := labels{"kind": "partners", labelNamespace: "shop", "pcns.team": "shop", "pcns." + labelName: "shop"}
	gns := labels{"kind": "partners"}
	type on struct{ pod, netset, gns bool }
	tests := []struct {
		name                        string
		policyNS, sel, nsSel, notSe string
		sa                          *serviceAccountMatch
		want                        on
	}{
		{"GNP rule selector reaches every namespace and network sets", "", "kind == 'partners'", "", "", nil, on{false, true, true}},
		{"NP rule selector stays in the policy's namespace", "other", "app == 'web'", "", "", nil, on{false, false, false}},
		{"NP rule selector in its own namespace", "shop", "has(app) || has(kind)", "", "", nil, on{true, true, false}},
		{"namespaceSelector sees namespace labels", "", "", "team == 'shop'", "", nil, on{true, true, false}},
		{"namespaceSelector sees projectcalico.org/name", "other", "", labelName + " == 'shop'", "", nil, on{true, true, false}},
		{"namespaceSelector all() is every namespaced endpoint", "", "", "all()", "", nil, on{true, true, false}},
		{"namespaceSelector global() is only global sets", "", "", "global()", "", nil, on{false, false, true}},
		{"a pod selector does not see namespace labels", "", "team == 'shop'", "", "", nil, on{false, false, false}},
		{"nets alone are not limited to the namespace", "other", "", "", "", nil, on{true, true, true}},
		{"a notSelector limits a namespaced rule to its namespace", "other", "", "", "has(x)", nil, on{false, false, false}},
		{"service account names", "", "", "", "", &serviceAccountMatch{Names: []string{"shop"}}, on{true, false, false}},
		{"service account selector sees its labels", "", "", "", "", &serviceAccountMatch{Selector: "role == 'frontend'"}, on{true, false, false}},
		{"service account names and selector both", "", "", "", "", &serviceAccountMatch{Names: []string{"other"}, Selector: "role == 'frontend'"}, on{false, false, false}},
	}
	for _, tt := range tests {
		sel, err := entitySelector(tt.policyNS, tt.sel, tt.nsSel, tt.notSe, tt.sa)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := on{true, true, true}
		if sel != nil {
			got = on{sel.matches(pod), sel.matches(netset), sel.matches(gns)}
		}
		if got != tt.want {
			t.Errorf("%s: matches (pod, NetworkSet, GlobalNetworkSet) %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A GlobalNetworkPolicy's namespaceSelector and serviceAccountSelector,
// and a NetworkPolicy's namespace, decide which pods it applies to.
func TestPolicySelectors(t *testing.T) {
	pod := labels{"app": "web", labelNamespace: "shop", labelServiceAccount: "shop", labelOrchestrator: "k8s",
		"pcns.team": "shop", "pcns." + labelName: "shop", "pcsa." + labelName: "shop"}
	tests := []struct {
		namespace, sel, nsSel, saSel string // namespace "": a GlobalNetworkPolicy
		want                         bool
	}{
		{"", "", "", "", true},
		{"", "", "all()", "", true},
		{"", "app == 'web'", "team == 'other'", "", false},
		{"", "", "team == 'shop'", labelName + " == 'shop'", true},
		{"", "", "", "all()", true},
		{"", "team == 'shop'", "", "", false},
		{"shop", "", "", "", true},
		{"other", "all()", "", "", false},
		{"shop", "app == 'web'", "", labelName + " == 'db'", false},
	}
	for _, tt := range tests {
		var sel selector
		var err error
		if tt.namespace == "" {
			sel, err = globalPolicySelector(tt.sel, tt.nsSel, tt.saSel)
		} else {
			sel, err = namespacedPolicySelector(tt.namespace, tt.sel, tt.saSel)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.matches(pod); got != tt.want {
			t.Errorf("%+v: %v, want %v", tt, got, tt.want)
		}
	}
}
