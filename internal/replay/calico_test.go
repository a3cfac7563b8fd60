package replay

import (
	"strings"
	"testing"
)

// How Calico versions name a policy of a tier (calico.md, "Names and
// tiers"): up to 3.31 "<tier>.<name>", from 3.32 the name alone with
// spec.tier.
func TestTierAndName(t *testing.T) {
	tests := []struct {
		stored, specTier, tier, name, err string
	}{
		{"default.pni-allow-dns", "", "default", "pni-allow-dns", ""},                           // 3.28
		{"calico-pni.pni-tier-allow-dns", "calico-pni", "calico-pni", "pni-tier-allow-dns", ""}, // 3.29-3.31
		{"calico-pni.pni-tier-allow-dns", "", "calico-pni", "pni-tier-allow-dns", ""},           // 3.29-3.31, tier from the name
		{"pni-tier-allow-dns", "calico-pni", "calico-pni", "pni-tier-allow-dns", ""},            // 3.32
		{"pni-allow-dns", "", "default", "pni-allow-dns", ""},                                   // the v3 name of a default-tier policy
		{"default.pni-allow-dns", "default", "default", "pni-allow-dns", ""},                    // spec.tier set as well
		{"calico-pni.pni-tier-allow-dns", "default", "", "", "tier prefix"},                     // versions disagree
		{"other.x", "calico-pni", "", "", "tier prefix"},
	}
	for _, tt := range tests {
		tier, name, err := tierAndName(tt.stored, tt.specTier)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q, tier %q: error %v, want %q", tt.stored, tt.specTier, err, tt.err)
		case tt.err == "" && (err != nil || tier != tt.tier || name != tt.name):
			t.Errorf("%q, tier %q: %q, %q, %v; want %q, %q", tt.stored, tt.specTier, tier, name, err, tt.tier, tt.name)
		}
	}
}

// Which directions a policy governs when its types are left out.
func TestPolicyTypes(t *testing.T) {
	rules := []calicoRule{{Action: actionAllow}}
	tests := []struct {
		spec  calicoSpec
		v3    bool
		wantI bool
		wantE bool
	}{
		{calicoSpec{}, false, true, true},                                           // v1, Felix: both
		{calicoSpec{Egress: rules}, false, true, true},                              // v1, whatever the rules
		{calicoSpec{}, true, true, false},                                           // v3: Ingress when no rules
		{calicoSpec{Ingress: rules}, true, true, false},                             // v3: ingress rules
		{calicoSpec{Egress: rules}, true, false, true},                              // v3: egress rules only
		{calicoSpec{Ingress: rules, Egress: rules}, true, true, true},               // v3: both
		{calicoSpec{Types: []string{"Egress"}, Ingress: rules}, false, false, true}, // as written
	}
	for _, tt := range tests {
		got, err := policyTypes(tt.spec, tt.v3)
		if err != nil {
			t.Fatal(err)
		}
		if got[ingress] != tt.wantI || got[egress] != tt.wantE {
			t.Errorf("%+v (v3 %v): ingress %v egress %v, want %v %v", tt.spec, tt.v3, got[ingress], got[egress], tt.wantI, tt.wantE)
		}
	}
	if got, err := policyTypes(calicoSpec{Types: []string{"egress"}}, false); err != nil || got != [2]bool{egress: true} {
		t.Errorf("types [egress]: %v, %v; Felix compares types without case", got, err)
	}
	if _, err := policyTypes(calicoSpec{Types: []string{"Both"}}, false); err == nil {
		t.Error("types [Both]: accepted; the types are Ingress and Egress")
	}
}
