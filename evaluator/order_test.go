package evaluator

import (
	"reflect"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
)

// TestTierAndPolicyOrder follows Felix's sorting (felix/calc/policy_sorter.go):
// tiers by order with a missing order last and ties by name (TierLess);
// inside a tier, policies by order with a missing order last, ties by
// name (PolKVLess).
func TestTierAndPolicyOrder(t *testing.T) {
	c := world(
		Policy{Kind: GlobalNetworkPolicy, Name: "z-first", Tier: "b-tier", Spec: spec(t, "{order: 1, selector: app == 'pg', types: [Ingress]}")},
		Policy{Kind: GlobalNetworkPolicy, Name: "a-no-order", Tier: "b-tier", Spec: spec(t, "{selector: app == 'pg', types: [Ingress]}")},
		Policy{Kind: GlobalNetworkPolicy, Name: "b-tie", Tier: "b-tier", Spec: spec(t, "{order: 5, selector: app == 'pg', types: [Ingress]}")},
		Policy{Kind: GlobalNetworkPolicy, Name: "a-tie", Tier: "b-tier", Spec: spec(t, "{order: 5, selector: app == 'pg', types: [Ingress]}")},
		Policy{Kind: GlobalNetworkPolicy, Name: "in-a", Tier: "a-tier", Spec: spec(t, "{selector: app == 'pg', types: [Ingress]}")},
		Policy{Kind: GlobalNetworkPolicy, Name: "in-unordered", Tier: "unordered", Spec: spec(t, "{selector: app == 'pg', types: [Ingress]}")},
		gnp(t, "in-default", "{order: 1, selector: app == 'pg', types: [Ingress]}"),
	)
	c.Tiers = []Tier{
		{Name: "unordered"},
		{Name: "b-tier", Order: order(100)},
		{Name: "a-tier", Order: order(100)},
	}
	ix := NewIndex(c)
	tiers, err := ix.Selecting(endpoint(t, ix, "db/pg"), calico.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, tier := range tiers {
		names := []string{tier.Tier}
		for _, p := range tier.Policies {
			names = append(names, p.Name)
		}
		got = append(got, names)
	}
	want := [][]string{
		{"a-tier", "in-a"},
		{"b-tier", "z-first", "a-tie", "b-tie", "a-no-order"},
		{"default", "in-default"}, // order 1,000,000 (Calico 3.29+)
		{"unordered", "in-unordered"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("evaluation order:\n got %v\nwant %v", got, want)
	}
}

// TestRuleActions follows Felix's policy chains (felix/rules/policy.go and
// endpoints.go): the first matching rule decides; Allow and Deny end the
// evaluation, Pass goes to the next tier, Log goes on; a tier whose
// policies select the endpoint and decide nothing applies its default
// action (Deny, or Pass when the Tier says so); with no tier deciding, the
// namespace's profile allows.
func TestRuleActions(t *testing.T) {
	selectPG := "selector: app == 'pg'\ntypes: [Ingress]\n"
	tests := []struct {
		name     string
		tiers    []Tier
		policies []Policy
		want     Verdict
		hits     []Hit
	}{
		{
			name: "no policy selects the pod: the profile allows",
			want: Allow,
			hits: []Hit{{Kind: "Profile", Name: "kns.db", Action: calico.Allow, PolicyIndex: 0, RuleIndex: 0}},
		},
		{
			name:     "first matching rule decides: Deny before Allow",
			policies: []Policy{gnp(t, "p", "order: 1\n"+selectPG+"ingress: [{action: Deny}, {action: Allow}]")},
			want:     Deny,
			hits:     []Hit{{Kind: "GlobalNetworkPolicy", Name: "p", Tier: "default", Action: calico.Deny, PolicyIndex: 0, RuleIndex: 0}},
		},
		{
			name: "a lower order wins over a higher one",
			policies: []Policy{
				gnp(t, "late", "order: 20\n"+selectPG+"ingress: [{action: Deny}]"),
				gnp(t, "early", "order: 10\n"+selectPG+"ingress: [{action: Allow}]"),
			},
			want: Allow,
			hits: []Hit{{Kind: "GlobalNetworkPolicy", Name: "early", Tier: "default", Action: calico.Allow, PolicyIndex: 0, RuleIndex: 0}},
		},
		{
			name:     "Log goes on to the next rule",
			policies: []Policy{gnp(t, "p", "order: 1\n"+selectPG+"ingress: [{action: Log}, {action: Allow}]")},
			want:     Allow,
			hits:     []Hit{{Kind: "GlobalNetworkPolicy", Name: "p", Tier: "default", Action: calico.Allow, PolicyIndex: 0, RuleIndex: 1}},
		},
		{
			name: "selected but no rule matched: end of tier deny, charged to the tier's last selecting policy",
			policies: []Policy{
				gnp(t, "a", "order: 1\n"+selectPG+"ingress: [{action: Allow, protocol: UDP}]"),
				gnp(t, "b", "order: 2\n"+selectPG),
			},
			want: Deny,
			hits: []Hit{{Kind: "EndOfTier", Tier: "default", Action: calico.Deny, PolicyIndex: 0, RuleIndex: -1,
				Trigger: &Hit{Kind: "GlobalNetworkPolicy", Name: "b", Tier: "default"}}},
		},
		{
			name:  "Pass skips the rest of the tier; the next tier decides",
			tiers: []Tier{{Name: "security", Order: order(10)}},
			policies: []Policy{
				{Kind: GlobalNetworkPolicy, Name: "security.pass", Tier: "security", Spec: spec(t, "order: 1\n"+selectPG+"ingress: [{action: Pass}]")},
				{Kind: GlobalNetworkPolicy, Name: "security.deny", Tier: "security", Spec: spec(t, "order: 2\n"+selectPG+"ingress: [{action: Deny}]")},
				gnp(t, "allow", "order: 1\n"+selectPG+"ingress: [{action: Allow}]"),
			},
			want: Allow,
			hits: []Hit{
				{Kind: "GlobalNetworkPolicy", Name: "pass", Tier: "security", Action: calico.Pass, PolicyIndex: 0, RuleIndex: 0},
				{Kind: "GlobalNetworkPolicy", Name: "allow", Tier: "default", Action: calico.Allow, PolicyIndex: 1, RuleIndex: 0},
			},
		},
		{
			name:  "a tier with default action Pass hands on to the next tier, then the profile",
			tiers: []Tier{{Name: "security", Order: order(10), DefaultAction: calico.Pass}},
			policies: []Policy{
				{Kind: GlobalNetworkPolicy, Name: "watch", Tier: "security", Spec: spec(t, "order: 1\n"+selectPG+"ingress: [{action: Log}]")},
			},
			want: Allow,
			hits: []Hit{
				{Kind: "EndOfTier", Tier: "security", Action: calico.Pass, PolicyIndex: 0, RuleIndex: -1, Trigger: &Hit{Kind: "GlobalNetworkPolicy", Name: "watch", Tier: "security"}},
				{Kind: "Profile", Name: "kns.db", Action: calico.Allow, PolicyIndex: 1, RuleIndex: 0},
			},
		},
		{
			name:     "a policy for egress only leaves ingress to the profile",
			policies: []Policy{gnp(t, "out", "order: 1\nselector: app == 'pg'\ntypes: [Egress]")},
			want:     Allow,
			hits:     []Hit{{Kind: "Profile", Name: "kns.db", Action: calico.Allow, PolicyIndex: 0, RuleIndex: 0}},
		},
		{
			name:     "without types a policy applies to both directions, as Felix reads a v1 object",
			policies: []Policy{gnp(t, "both", "order: 1\nselector: app == 'pg'")},
			want:     Deny,
			hits: []Hit{{Kind: "EndOfTier", Tier: "default", Action: calico.Deny, PolicyIndex: 0, RuleIndex: -1,
				Trigger: &Hit{Kind: "GlobalNetworkPolicy", Name: "both", Tier: "default"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := world(tt.policies...)
			c.Tiers = tt.tiers
			ix := NewIndex(c)
			r := check(t, ix, "shop/web", "db/pg", 5432, tt.want)
			if !reflect.DeepEqual(r.Ingress.Hits, tt.hits) {
				t.Errorf("ingress hits:\n got %+v\nwant %+v", r.Ingress.Hits, tt.hits)
			}
		})
	}
}

// TestBothSides: Felix polices egress at the source's endpoint and ingress
// at the destination's; a connection passes only if both allow it.
func TestBothSides(t *testing.T) {
	denyOut := gnp(t, "deny-out", "{order: 1, selector: app == 'web', types: [Egress], egress: [{action: Deny}]}")
	allowIn := gnp(t, "allow-in", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow}]}")
	denyIn := gnp(t, "deny-in", "{order: 1, selector: app == 'pg', types: [Ingress]}")
	r := check(t, NewIndex(world(denyOut, allowIn)), "shop/web", "db/pg", 5432, Deny)
	if r.Egress.Verdict != Deny || r.Ingress.Verdict != Allow {
		t.Errorf("sides: egress %s, ingress %s", r.Egress.Verdict, r.Ingress.Verdict)
	}
	r = check(t, NewIndex(world(denyIn)), "shop/web", "db/pg", 5432, Deny)
	if r.Egress.Verdict != Allow || r.Ingress.Verdict != Deny || !r.Egress.Policed || len(r.Egress.Tiers) != 0 {
		t.Errorf("sides: egress %s (policed %v, %d tiers), ingress %s", r.Egress.Verdict, r.Egress.Policed, len(r.Egress.Tiers), r.Ingress.Verdict)
	}
}

// TestTiesByCalicoVersion follows Felix's tie-break between policies of
// equal order (felix/calc/policy_sorter.go, PolKVLess). Up to Calico 3.31
// it compares the policies' v1 names: "<tier>.<name>" for a
// GlobalNetworkPolicy, "<namespace>/<tier>.<name>" for a NetworkPolicy,
// "<namespace>/knp.default.<name>" for a Kubernetes one
// (libcalico-go/lib/names, updateprocessors). From 3.32 it compares
// "<name>/<namespace>/<kind>" with the plain name. The two disagree where
// one name is the other's prefix followed by "-" or "." (both sort before
// "/"), and between namespaced and global policies.
func TestTiesByCalicoVersion(t *testing.T) {
	selectPG := "order: 10\nselector: app == 'pg'\ntypes: [Ingress]\n"
	tests := []struct {
		name     string
		policies []Policy
		v331     []string // evaluation order up to 3.31
		v332     []string // from 3.32
	}{
		{"a name and the same name with a dash",
			[]Policy{gnp(t, "web", selectPG), gnp(t, "web-extra", selectPG)},
			[]string{"web", "web-extra"}, []string{"web-extra", "web"}},
		{"a name and the same name with a dot, in a tier named the 3.29 to 3.31 way",
			[]Policy{
				{Kind: GlobalNetworkPolicy, Name: "t.a", Tier: "t", Spec: spec(t, selectPG)},
				{Kind: GlobalNetworkPolicy, Name: "t.a.b", Tier: "t", Spec: spec(t, selectPG)},
			},
			[]string{"t.a", "t.a.b"}, []string{"t.a.b", "t.a"}},
		{"a NetworkPolicy sorts by its namespace up to 3.31 (db/default.b before default.a)",
			[]Policy{gnp(t, "a", selectPG), np(t, "db", "b", selectPG)},
			[]string{"b", "a"}, []string{"a", "b"}},
		{"a Kubernetes NetworkPolicy by knp.default.",
			[]Policy{np(t, "db", "z", selectPG), {Kind: KubernetesNetworkPolicy, Namespace: "db", Name: "a", Spec: spec(t, selectPG)}},
			[]string{"z", "a"}, []string{"a", "z"}},
	}
	orderOf := func(c *Cluster) []string {
		ix := NewIndex(c)
		tiers, err := ix.Selecting(endpoint(t, ix, "db/pg"), calico.Ingress)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tier := range tiers {
			for _, p := range tier.Policies {
				names = append(names, p.Name)
			}
		}
		return names
	}
	for _, tt := range tests {
		for _, v := range []struct {
			version calico.Version
			want    []string
		}{{calico.Version{Major: 3, Minor: 28}, tt.v331}, {calico.Version{Major: 3, Minor: 31}, tt.v331}, {calico.Version{Major: 3, Minor: 32}, tt.v332}} {
			c := world(tt.policies...)
			c.Tiers = []Tier{{Name: "t", Order: order(100)}}
			c.CalicoVersion = v.version
			if got := orderOf(c); !reflect.DeepEqual(got, v.want) {
				t.Errorf("%s, Calico %s: %v, want %v", tt.name, v.version, got, v.want)
			}
		}
	}
}

// TestTiesOfUnknownVersion: without a Calico version, ties are broken as
// 3.32 does, and a note names the policies whose order that choice
// decides where it can change a verdict: both apply to a direction and
// one has a Deny or Pass rule for it.
func TestTiesOfUnknownVersion(t *testing.T) {
	selectPG := "order: 10\nselector: app == 'pg'\ntypes: [Ingress]\n"
	ix := NewIndex(world(
		gnp(t, "web", selectPG+"ingress: [{action: Deny}]"), gnp(t, "web-extra", selectPG+"ingress: [{action: Allow}]"),
		gnp(t, "other", "order: 11\nselector: all()\ntypes: [Ingress]"),
		// Tied, ordered differently, but only Allow rules: no note.
		gnp(t, "api", "order: 12\nselector: all()\ntypes: [Ingress]\ningress: [{action: Allow}]"),
		gnp(t, "api-extra", "order: 12\nselector: all()\ntypes: [Ingress]\ningress: [{action: Allow}]"),
		// Tied, but for different directions: no note.
		gnp(t, "dns", "order: 13\nselector: all()\ntypes: [Ingress]\ningress: [{action: Deny}]"),
		gnp(t, "dns-egress", "order: 13\nselector: all()\ntypes: [Egress]\negress: [{action: Deny}]"),
	))
	notes := strings.Join(ix.Notes(), "\n")
	if !strings.Contains(notes, "web-extra and web have the same order (order 10) in tier default") || !strings.Contains(notes, "Calico 3.31 and earlier evaluate web first") {
		t.Errorf("notes: %s", notes)
	}
	for _, quiet := range []string{"other", "api", "dns"} {
		if strings.Contains(notes, quiet) {
			t.Errorf("a note for %s, whose order changes no verdict: %s", quiet, notes)
		}
	}
	c := world(gnp(t, "web", selectPG+"ingress: [{action: Deny}]"), gnp(t, "web-extra", selectPG))
	c.CalicoVersion = calico.Version{Major: 3, Minor: 32}
	if notes := NewIndex(c).Notes(); len(notes) > 0 {
		t.Errorf("notes with a known version: %v", notes)
	}
}
