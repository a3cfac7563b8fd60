package controller_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// The tests in this file read the API server's own record of the writes it
// accepted (its audit log), in the order etcd committed them, and check
// the order calico-pni promises.

// mark returns the position of the wire record now.
func mark(t *testing.T, e *testbed.Env) int64 {
	t.Helper()
	m, err := e.Wire().Mark()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// daemonWrites returns the writes the controller under test made since m.
func daemonWrites(t *testing.T, e *testbed.Env, m int64) []testbed.Write {
	t.Helper()
	all, err := e.Wire().Writes(m)
	if err != nil {
		t.Fatal(err)
	}
	var out []testbed.Write
	for _, w := range all {
		if w.Writer == daemonUser {
			out = append(out, w)
		}
	}
	return out
}

// wireStep names what a write does to isolation: "allow", "baseline" or
// "hold" for a policy (with its verb, and "@calico-pni" for a policy of
// calico-pni's tier), "in", "out" or "status" for a namespace patch, and
// "create tier" or "delete tier" for calico-pni's tier.
func wireStep(w testbed.Write) string {
	switch {
	case w.Resource == "globalnetworkpolicies":
		class := ""
		if w.Object != nil {
			class = w.Object.GetLabels()[calico.ClassLabel]
		}
		// Names tell the tier (and, for a delete answered with a Status,
		// the class).
		_, name, prefixed := strings.Cut(w.Name, ".")
		if !prefixed {
			name = w.Name
		}
		tier := ""
		if strings.HasPrefix(name, policies.TierNamePrefix) {
			tier, name = "@"+config.TierName, "pni-"+strings.TrimPrefix(name, policies.TierNamePrefix)
		}
		if class == "" {
			switch {
			case strings.HasPrefix(name, "pni-deny-"):
				class = string(calico.ClassBaseline)
			case strings.HasPrefix(name, "pni-hold-open-"):
				class = string(calico.ClassHold)
			default:
				class = string(calico.ClassAllow)
			}
		}
		return w.Verb + " " + class + tier
	case w.Resource == "stagedglobalnetworkpolicies":
		return w.Verb + " staged"
	case w.Resource == "tiers":
		return w.Verb + " tier"
	case w.Resource == "namespaces" && w.Verb == "patch":
		var patch struct {
			Metadata struct {
				Labels map[string]*string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(w.Request, &patch); err == nil {
			if v, ok := patch.Metadata.Labels[policies.IsolatedLabel]; ok {
				if v == nil {
					return "out"
				}
				return "in"
			}
		}
		return "status"
	}
	return w.Verb + " " + w.Resource
}

// assertOrder checks that every write of each group comes after every
// write of the groups before it, and that each group is present.
func assertOrder(t *testing.T, writes []testbed.Write, groups ...[]string) {
	t.Helper()
	var trace []string
	for _, w := range writes {
		trace = append(trace, fmt.Sprintf("%s (%s)", wireStep(w), w.Name))
	}
	first, last := make([]int, len(groups)), make([]int, len(groups))
	for g := range groups {
		first[g], last[g] = -1, -1
	}
	for i, w := range writes {
		for g, members := range groups {
			if slices.Contains(members, wireStep(w)) {
				if first[g] < 0 {
					first[g] = i
				}
				last[g] = i
			}
		}
	}
	for g := range groups {
		if first[g] < 0 {
			t.Errorf("no %v write on the wire:\n%s", groups[g], strings.Join(trace, "\n"))
			return
		}
		if g > 0 && first[g] < last[g-1] {
			t.Errorf("%v write %d comes before %v write %d:\n%s", groups[g], first[g], groups[g-1], last[g-1], strings.Join(trace, "\n"))
		}
	}
}

// The way in: allows, then the namespace labels, then the baseline.
func TestWireOrderIntoIsolation(t *testing.T) {
	e := fixtureEnv(t)
	m := mark(t, e)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	assertOrder(t, daemonWrites(t, e, m), []string{"create allow"}, []string{"in"}, []string{"create baseline"})
}

// The way out of a project: the namespace labels, then the allows (the
// baseline stays while calico-pni runs; cleanup's order is checked by
// TestCleanupLeavesNothing).
func TestWireOrderOutOfIsolation(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	m := mark(t, e)
	everyoneExempt := config.Default()
	everyoneExempt.ExemptNamespaces = []string{"*"}
	r.c.SetConfig(everyoneExempt)
	testbed.Eventually(t, wait, func() error { return converged(e, everyoneExempt, v128) })
	assertOrder(t, daemonWrites(t, e, m), []string{"out"}, []string{"delete allow"})
}

// Switching egress isolation off and on again while namespaces stay
// isolated: a hold-open policy keeps egress as it is until every write of
// the switch is done (the review found the egress allows deleted at the
// same time as pni-deny-egress, denying DNS everywhere for that moment).
func TestWireEgressSwitch(t *testing.T) {
	e := fixtureEnv(t)
	cfg := config.Default()
	r := start(t, e, cfg)
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })

	m := mark(t, e)
	off := config.Default()
	off.IsolateEgress = false
	r.c.SetConfig(off)
	testbed.Eventually(t, wait, func() error { return converged(e, off, v128) })
	assertOrder(t, daemonWrites(t, e, m),
		[]string{"create hold"}, []string{"delete baseline"}, []string{"update allow", "delete allow"}, []string{"delete hold"})

	m = mark(t, e)
	r.c.SetConfig(cfg)
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v128) })
	assertOrder(t, daemonWrites(t, e, m),
		[]string{"create hold"}, []string{"create allow", "update allow"}, []string{"create baseline"}, []string{"delete hold"})
}
