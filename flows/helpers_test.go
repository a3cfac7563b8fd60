package flows

import (
	"sync"
	"time"
)

// t0 is the start of every test's time.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Traces as Calico 3.30+ reports them (calico.md, "Flow logs: Goldmane";
// docs/rollout.md step 4).
var (
	// The destination's namespace profile allowed: no enforced policy
	// selects it.
	profileAllow = func(ns string) []Hit {
		return []Hit{{Kind: "Profile", Name: "kns." + ns, Action: "allow", RuleIndex: 0}}
	}
	// The end of calico-pni's tier, charged to its staged ingress wall.
	tierWallDeny = []Hit{{
		Kind: "EndOfTier", Tier: "calico-pni", Action: "deny", RuleIndex: -1,
		Trigger: &Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-deny-ingress", Tier: "calico-pni"},
	}}
	// Default-tier mode: the end of the default tier, charged to the
	// staged ingress wall.
	defaultTierWallDeny = []Hit{{
		Kind: "EndOfTier", Tier: "default", Action: "deny", RuleIndex: -1,
		Trigger: &Hit{Kind: "StagedGlobalNetworkPolicy", Name: "pni-staged-deny-ingress", Tier: "default"},
	}}
	// The project's staged allow passes to the next tier, where a
	// tenant's staged NetworkPolicy would deny.
	tenantDeny = func(ns string) []Hit {
		return []Hit{
			{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-project-p-shop", Tier: "calico-pni", Action: "pass", RuleIndex: 0},
			{Kind: "StagedNetworkPolicy", Namespace: ns, Name: "lockdown", Tier: "default", Action: "deny", PolicyIndex: 1, RuleIndex: 0},
		}
	}
)

// flowAt is a flow seen at the destination: src to dst on TCP port,
// Felix's verdict action with the given traces, in the interval that
// starts at start.
func flowAt(src, dst string, port int, action string, enforced, pending []Hit, start time.Time) Flow {
	return Flow{
		Src:      Endpoint{Namespace: src, Name: src + "-client-", Type: WorkloadEndpoint},
		Dst:      Endpoint{Namespace: dst, Name: dst + "-server-", Type: WorkloadEndpoint},
		Port:     port,
		Protocol: "TCP",
		Reporter: ReporterDst,
		Action:   action,
		Enforced: enforced, Pending: pending,
		Start: start, End: start.Add(Interval),
		Connections: 2,
	}
}

// pendingDeny is a flow into dst that Felix allowed and the staged walls
// would deny.
func pendingDeny(src, dst string, port int, start time.Time) Flow {
	return flowAt(src, dst, port, "allow", profileAllow(dst), tierWallDeny, start)
}

// allowed is a flow into dst that is allowed with and without the walls.
func allowed(src, dst string, port int, start time.Time) Flow {
	return flowAt(src, dst, port, "allow", profileAllow(dst), []Hit{
		{Kind: "StagedGlobalNetworkPolicy", Name: "pni-tier-staged-project-p-shop", Tier: "calico-pni", Action: "allow"},
	}, start)
}

// projects maps test namespaces to projects.
func projects(m map[string]string) ProjectOf {
	return func(ns string) string { return m[ns] }
}
