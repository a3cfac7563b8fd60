package evaluator

import (
	"testing"
)

// TestStaged follows Calico's staged policies (docs: network-policy/
// staged-network-policies; spec.stagedAction): they are never enforced;
// evaluated as if enforced, a staged Set takes the place of the enforced
// policy of the same kind and name (or adds one), a staged Delete removes
// it.
func TestStaged(t *testing.T) {
	enforcedDeny := gnp(t, "guard", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Deny}]}")
	stagedAllow := gnp(t, "guard", "{order: 1, selector: app == 'pg', types: [Ingress], ingress: [{action: Allow}]}")
	stagedAllow.Kind = StagedGlobalNetworkPolicy
	stagedDelete := Policy{Kind: StagedGlobalNetworkPolicy, Name: "guard", StagedAction: StagedDelete}
	stagedNew := np(t, "db", "new", "{order: 1, selector: all(), types: [Ingress]}")
	stagedNew.Kind = StagedNetworkPolicy

	tests := []struct {
		name   string
		staged []Policy
		opts   []Option
		want   Verdict
		hit    string
	}{
		{"staged policies are not enforced", []Policy{stagedAllow}, nil, Deny, "GlobalNetworkPolicy"},
		{"staged Set replaces the enforced policy", []Policy{stagedAllow}, []Option{WithStaged()}, Allow, "StagedGlobalNetworkPolicy"},
		{"staged Delete removes it", []Policy{stagedDelete}, []Option{WithStaged()}, Allow, "Profile"},
		{"a staged policy with a new name is added", []Policy{stagedDelete, stagedNew}, []Option{WithStaged()}, Deny, "EndOfTier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := world(enforcedDeny)
			c.Staged = tt.staged
			r := check(t, NewIndex(c, tt.opts...), "shop/web", "db/pg", 5432, tt.want)
			if got := r.Ingress.Hits[len(r.Ingress.Hits)-1].Kind; got != tt.hit {
				t.Errorf("deciding hit kind %s, want %s", got, tt.hit)
			}
		})
	}
}
