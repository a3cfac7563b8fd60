package plan

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

func allowRule(from string) calico.Rule {
	return calico.Rule{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: from}}
}

func withIngress(p calico.Policy, rules ...calico.Rule) calico.Policy {
	p.Spec.Ingress = rules
	return p
}

func live(p calico.Policy, rv string) *unstructured.Unstructured {
	u := api328.Object(p)
	u.SetResourceVersion(rv)
	u.SetUID(types.UID("uid-" + p.Name))
	return u
}

func names(changes []PolicyWrite) []string {
	var out []string
	for _, c := range changes {
		s := c.Verb + " " + c.Name
		if c.OnWritten {
			s += " (after union)"
		}
		out = append(out, s)
	}
	return out
}

// Every kind of difference lands in the step that keeps the promise: what
// permits more before the namespaces and the baseline, what permits less
// after them.
func TestPlanSortsWritesIntoSteps(t *testing.T) {
	a, b := allowRule("p == 'a'"), allowRule("p == 'b'")
	base := testPolicy("pni-x", calico.ClassAllow, "i == 'true'")
	keep := withIngress(testPolicy("pni-keep", calico.ClassAllow, "i == 'true'"), a)
	gain := withIngress(testPolicy("pni-gain", calico.ClassAllow, "i == 'true'"), a, b)
	lose := withIngress(testPolicy("pni-lose", calico.ClassAllow, "i == 'true'"), a)
	mixed := withIngress(testPolicy("pni-mixed", calico.ClassAllow, "i == 'true'"), b)
	added := withIngress(base, a)
	added.Name = "pni-added"
	denyNew := testPolicy("pni-deny-egress", calico.ClassBaseline, "i == 'true'")
	denyNew.Spec.Types = []calico.PolicyType{calico.Egress}

	gone := live(withIngress(testPolicy("pni-gone", calico.ClassAllow, "i == 'true'"), a), "5")
	goneDeny := live(testPolicy("pni-deny-old", calico.ClassBaseline, "i == 'true'"), "6")
	tampered := live(testPolicy("pni-tampered", calico.ClassAllow, "i == 'true'"), "7")
	tampered.SetLabels(map[string]string{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: "whatever"})
	oldGain := live(withIngress(testPolicy("pni-gain", calico.ClassAllow, "i == 'true'"), a), "8")
	oldGain.SetLabels(map[string]string{calico.ManagedByLabel: calico.ManagedByValue, calico.ClassLabel: "allow", "team": "kept"})

	plan := planPolicies(planInput{
		desired: []calico.Policy{keep, gain, lose, mixed, added, denyNew},
		api:     api328,
		managed: []*unstructured.Unstructured{
			live(keep, "1"), oldGain, live(withIngress(lose, a, b), "3"), live(withIngress(mixed, a), "4"),
			gone, goneDeny, tampered,
		},
		canon: CanonicalOf,
	})

	check := func(step string, got []PolicyWrite, want ...string) {
		t.Helper()
		if !reflect.DeepEqual(names(got), want) {
			t.Errorf("%s step: %q, want %q", step, names(got), want)
		}
	}
	check("hold", plan.hold)
	check("widen", plan.widen, "create pni-added", "update pni-gain", "update pni-mixed")
	check("baseline", plan.baseline, "create pni-deny-egress", "delete pni-deny-old")
	check("narrow", plan.narrow, "delete pni-gone", "update pni-lose", "update pni-mixed (after union)", "delete pni-tampered")
	check("release", plan.release)
	for _, name := range []string{"pni-keep", "pni-lose"} {
		if !plan.sufficient[name] {
			t.Errorf("%s: its live copy permits all the desired one does; namespaces need not wait for it", name)
		}
	}
	if plan.sufficient["pni-mixed"] || plan.sufficient["pni-gain"] {
		t.Errorf("sufficient = %v: the live copies of pni-mixed and pni-gain permit less than wanted", plan.sufficient)
	}

	// The union of pni-mixed permits what the old and the new permit.
	union, err := calico.SpecOf(plan.widen[2].Object)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(union.Ingress, []calico.Rule{a, b}) {
		t.Errorf("union rules %+v, want the old rule then the new one", union.Ingress)
	}
	// An update keeps the resourceVersion and the labels others added.
	up := plan.widen[1].Object
	if up.GetResourceVersion() != "8" || up.GetUID() != "uid-pni-gain" || up.GetLabels()["team"] != "kept" {
		t.Errorf("an update must carry the resourceVersion and keep others' labels: %v", up.Object["metadata"])
	}
	if plan.baseline[1].Object.GetName() != "default.pni-deny-old" {
		t.Errorf("a delete names the stored object: %s", plan.baseline[1].Object.GetName())
	}
}

// A policy whose new form fails validation stays on the server as it was:
// neither updated nor deleted.
func TestPlanKeepsAPolicyWhoseNewFormIsInvalid(t *testing.T) {
	old := withIngress(testPolicy("pni-role-redis", calico.ClassAllow, "i == 'true'"), allowRule("p == 'a'"))
	plan := planPolicies(planInput{
		invalid: map[string]error{"pni-role-redis": errInvalidForTest},
		api:     api328,
		managed: []*unstructured.Unstructured{live(old, "1")},
		canon:   CanonicalOf,
	})
	for step, changes := range map[string][]PolicyWrite{"hold": plan.hold, "widen": plan.widen, "baseline": plan.baseline, "narrow": plan.narrow, "release": plan.release} {
		if len(changes) > 0 {
			t.Errorf("%s step touches the kept policy: %q", step, names(changes))
		}
	}
	if !reflect.DeepEqual(plan.kept, []string{"pni-role-redis"}) {
		t.Errorf("kept = %v", plan.kept)
	}
}

var errInvalidForTest = &invalidError{}

type invalidError struct{}

func (*invalidError) Error() string { return "spec.ingress[0].destination.ports: out of range" }

// Switching a direction on or off while namespaces are isolated goes
// through a hold-open policy, created first and removed last.
func TestPlanHoldsADirectionWhileItSwitches(t *testing.T) {
	ingressOnly := testPolicy("pni-project-a", calico.ClassAllow, "i == 'true'")
	both := ingressOnly
	both.Spec.Types = []calico.PolicyType{calico.Ingress, calico.Egress}
	both.Spec.Egress = []calico.Rule{{Action: calico.Allow}}
	hold := live(policies.HoldOpen("", calico.Egress), "9")

	tests := []struct {
		name         string
		desired      calico.Policy
		managed      []*unstructured.Unstructured
		isolatedLive bool
		hold         []string
		release      []string
	}{
		{"egress switched on", both, []*unstructured.Unstructured{live(ingressOnly, "1")}, true, []string{"create pni-hold-open-egress"}, nil},
		{"egress switched off", ingressOnly, []*unstructured.Unstructured{live(both, "1")}, true, []string{"create pni-hold-open-egress"}, nil},
		{"no namespace isolated yet", both, []*unstructured.Unstructured{live(ingressOnly, "1")}, false, nil, nil},
		{"no switch", both, []*unstructured.Unstructured{live(both, "1")}, true, nil, nil},
		{"switch resumed after a failed pass", both, []*unstructured.Unstructured{live(ingressOnly, "1"), hold}, true, nil, []string{"delete pni-hold-open-egress"}},
		{"switch done, hold left over", both, []*unstructured.Unstructured{live(both, "1"), hold}, true, nil, []string{"delete pni-hold-open-egress"}},
	}
	for _, tt := range tests {
		plan := planPolicies(planInput{desired: []calico.Policy{tt.desired}, api: api328, managed: tt.managed, canon: CanonicalOf, isolatedLive: tt.isolatedLive})
		if !reflect.DeepEqual(names(plan.hold), tt.hold) || !reflect.DeepEqual(names(plan.release), tt.release) {
			t.Errorf("%s: hold %q release %q, want %q %q", tt.name, names(plan.hold), names(plan.release), tt.hold, tt.release)
		}
		for _, ch := range plan.narrow {
			if ch.Class == calico.ClassHold {
				t.Errorf("%s: the hold-open policy is removed in the narrowing step, before the end", tt.name)
			}
		}
	}
	h := policies.HoldOpen("", calico.Egress)
	if err := calico.Validate(h); err != nil {
		t.Fatal(err)
	}
	if *h.Spec.Order <= policies.AllowOrder || *h.Spec.Order >= policies.BaselineOrder || h.Spec.NamespaceSelector != "calico-pni.io/isolated == 'true'" {
		t.Errorf("hold-open policy %+v: must select isolated namespaces after the allows and before the baseline", h.Spec)
	}
}

func TestCovers(t *testing.T) {
	a, b := allowRule("p == 'a'"), allowRule("p == 'b'")
	p := func(sel string, types []calico.PolicyType, rules ...calico.Rule) calico.GlobalNetworkPolicySpec {
		o := 2000.0
		return calico.GlobalNetworkPolicySpec{Order: &o, NamespaceSelector: sel, Types: types, Ingress: rules}
	}
	in := []calico.PolicyType{calico.Ingress}
	inEg := []calico.PolicyType{calico.Ingress, calico.Egress}
	tests := []struct {
		name string
		a, b calico.GlobalNetworkPolicySpec
		want bool
	}{
		{"equal", p("s", in, a), p("s", in, a), true},
		{"a rule appended", p("s", in, a, b), p("s", in, a), true},
		{"a rule prepended changes what decides first", p("s", in, b, a), p("s", in, a), false},
		{"a rule removed", p("s", in), p("s", in, a), false},
		{"another selection", p("t", in, a), p("s", in, a), false},
		{"a direction more", p("s", inEg, a), p("s", in, a), true},
		{"a direction less", p("s", in, a), p("s", inEg, a), false},
	}
	for _, tt := range tests {
		if got := covers(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: covers = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUnionSpec(t *testing.T) {
	o := 2000.0
	old := calico.GlobalNetworkPolicySpec{Order: &o, NamespaceSelector: "old == 'x'", Types: []calico.PolicyType{calico.Ingress},
		Ingress: []calico.Rule{allowRule("p == 'a'")}}
	new := calico.GlobalNetworkPolicySpec{Order: &o, NamespaceSelector: "new == 'x'", Types: []calico.PolicyType{calico.Egress},
		Egress: []calico.Rule{{Action: calico.Allow, Destination: calico.EntityRule{NamespaceSelector: "p == 'b'"}}}}
	u, ok := unionSpec(old, new)
	if !ok {
		t.Fatal("no union for policies that select different namespaces")
	}
	want := calico.GlobalNetworkPolicySpec{Order: &o, NamespaceSelector: "(old == 'x') || (new == 'x')",
		Types: []calico.PolicyType{calico.Ingress, calico.Egress},
		// Each rule stays with the namespaces of its own policy.
		Ingress: []calico.Rule{{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: "p == 'a'"}, Destination: calico.EntityRule{NamespaceSelector: "old == 'x'"}}},
		Egress:  []calico.Rule{{Action: calico.Allow, Source: calico.EntityRule{NamespaceSelector: "new == 'x'"}, Destination: calico.EntityRule{NamespaceSelector: "p == 'b'"}}},
	}
	if !calico.SpecEqual(u, want) {
		t.Errorf("union\n got %s\nwant %s", calico.CanonicalSpec(u), calico.CanonicalSpec(want))
	}
	// An egress rule is pinned by its source, which cannot be both a
	// services match and a selector.
	new.Egress[0].Source = calico.EntityRule{Services: &calico.ServiceMatch{Name: "metrics", Namespace: "monitoring"}}
	if u, ok := unionSpec(old, new); ok {
		t.Errorf("union with a source services rule: %s", calico.CanonicalSpec(u))
	}
	// A destination services match (the Kubernetes API) is pinned by the
	// source and stays as it is.
	new.Egress[0].Source = calico.EntityRule{}
	new.Egress[0].Destination = calico.EntityRule{Services: &calico.ServiceMatch{Name: "kubernetes", Namespace: "default"}}
	u, ok = unionSpec(old, new)
	if !ok || u.Egress[0].Source.NamespaceSelector != "new == 'x'" || u.Egress[0].Destination.Services == nil {
		t.Errorf("union with the kube-api rule (%v): %s", ok, calico.CanonicalSpec(u))
	}
}

// The copy of a namespace's Rancher policies never shrinks while one of
// them remains: a desired copy with fewer rules leaves the live one as it
// is, one with a new rule is written as the union.
func TestPlanKeepsTheRancherCopyWhole(t *testing.T) {
	copyOf := func(rules ...calico.Rule) calico.Policy {
		p := withIngress(testPolicy("pni-rancher-shop", calico.ClassHandover, "projectcalico.org/name == 'shop'"), rules...)
		return p
	}
	a, b, c := allowRule("p == 'a'"), allowRule("p == 'b'"), allowRule("p == 'c'")
	a.Destination.Selector, b.Destination.Selector, c.Destination.Selector = "x == 'a'", "x == 'b'", "x == 'c'"
	whole := copyOf(a, b)
	whole.Spec.Selector = "(x == 'a') || (x == 'b')"
	live := []*unstructured.Unstructured{live(whole, "3")}

	shrunk := copyOf(a)
	shrunk.Spec.Selector = "x == 'a'"
	plan := planPolicies(planInput{desired: []calico.Policy{shrunk}, api: api328, managed: live, canon: CanonicalOf})
	if len(plan.widen)+len(plan.narrow) != 0 {
		t.Errorf("a copy whose Rancher policies shrank was rewritten: widen %q narrow %q", names(plan.widen), names(plan.narrow))
	}

	grown := copyOf(a, c)
	grown.Spec.Selector = "(x == 'a') || (x == 'c')"
	plan = planPolicies(planInput{desired: []calico.Policy{grown}, api: api328, managed: live, canon: CanonicalOf})
	if len(plan.widen) != 1 || len(plan.narrow) != 0 {
		t.Fatalf("widen %q narrow %q, want one widening write", names(plan.widen), names(plan.narrow))
	}
	spec := plan.widen[0].Policy.Spec
	if len(spec.Ingress) != 3 || spec.Selector != "(x == 'a') || (x == 'b') || (x == 'c')" {
		t.Errorf("the copy written: selector %q, %d rules; want every pod and rule of both", spec.Selector, len(spec.Ingress))
	}

	plan = planPolicies(planInput{api: api328, managed: live, canon: CanonicalOf})
	if got := names(plan.narrow); len(got) != 1 || got[0] != "delete pni-rancher-shop" {
		t.Errorf("with no Rancher policy left: narrow %q, want the copy deleted", got)
	}
}
