package plan_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/replay"
	"github.com/calico-pni/calico-pni/objects"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"
)

// The model check plans transitions of small clusters and checks every
// state a plan can pass through: after each step, and within a step after
// any subset of its writes (the writes of a step run in parallel, in any
// order). In every such state each connection between the cluster's pods
// that the states before and after the transition agree on must have that
// verdict. The clusters are built from the real generator; connections are
// judged by an evaluator of Calico's semantics (judge).

// A namespace's situation in a model cluster.
type situation string

const (
	unassigned situation = "none"     // in no project: not isolated
	system     situation = "system"   // in the System project
	projectA   situation = "a"        // isolated in project p-a
	projectB   situation = "b"        // isolated in project p-b
	projectC   situation = "c"        // isolated in project p-c
	optedOutA  situation = "a-optout" // in project p-a, opted out
	stagedD    situation = "d-staged" // in project p-d, whose rollout is staged
)

var situations = []situation{unassigned, system, projectA, projectB, optedOutA}

// modelCluster is a model cluster: namespaces by name, in situations.
type modelCluster map[string]situation

// observers are namespaces that stay put in every scenario.
var observers = modelCluster{
	"kube-system": system,
	"obs-a":       projectA,
	"obs-b":       projectB,
	"obs-open":    unassigned,
	"obs-a-out":   optedOutA,
}

func (m modelCluster) snapshot() policies.Snapshot { return m.snapshotAt(api328.Version) }

func (m modelCluster) snapshotAt(v calico.Version) policies.Snapshot {
	var snap policies.Snapshot
	for _, name := range slices.Sorted(maps.Keys(m)) {
		ns := policies.Namespace{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}
		project := ""
		switch s := m[name]; s {
		case system:
			project = "p-sys"
		case projectA, optedOutA:
			project = "p-a"
		case projectB:
			project = "p-b"
		case projectC:
			project = "p-c"
		case stagedD:
			project = "p-d"
		}
		if project != "" {
			ns.Labels["field.cattle.io/projectId"] = project
			ns.Annotations["field.cattle.io/projectId"] = "c-m:" + project
		}
		if m[name] == optedOutA {
			ns.Annotations[config.IsolationAnnotation] = config.IsolationDisabled
		}
		snap.Namespaces = append(snap.Namespaces, ns)
	}
	snap.CalicoVersion = v
	return snap
}

var (
	api328 = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}
	api330 = calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 30}, Tiers: true, Staged: true}
)

// world is a cluster as the dataplane sees it: namespace labels and the
// stored policies.
type world struct {
	api        calico.API
	namespaces map[string]map[string]string
	policies   map[string]*unstructured.Unstructured
}

func (w world) clone() world {
	out := world{api: w.api, namespaces: map[string]map[string]string{}, policies: maps.Clone(w.policies)}
	for k, v := range w.namespaces {
		out.namespaces[k] = maps.Clone(v)
	}
	return out
}

// converged is the world calico-pni leaves once it has written desired.
func converged(d policies.Desired) world { return convergedIn(api328, d) }

func convergedIn(api calico.API, d policies.Desired) world {
	w := world{api: api, namespaces: map[string]map[string]string{}, policies: map[string]*unstructured.Unstructured{}}
	for _, ns := range d.Namespaces {
		w.namespaces[ns.Name] = maps.Clone(ns.Labels)
	}
	for i, p := range d.Policies {
		u := api.Object(p)
		u.SetResourceVersion(strconv.Itoa(i + 1))
		u.SetUID(types.UID("uid-" + u.GetName()))
		w.policies[u.GetKind()+"/"+u.GetName()] = u
	}
	if d.Tier != nil {
		u := api.TierObject(*d.Tier)
		u.SetUID("uid-tier")
		w.policies["Tier/"+u.GetName()] = u
	}
	return w
}

func (w world) input(d policies.Desired) plan.Input {
	in := plan.Input{Desired: d, API: w.api, Namespaces: map[string]plan.Namespace{}}
	for name, labels := range w.namespaces {
		in.Namespaces[name] = plan.Namespace{Labels: labels, ResourceVersion: "1"}
	}
	for _, key := range slices.Sorted(maps.Keys(w.policies)) {
		if u := w.policies[key]; u.GetKind() == "Tier" {
			in.LiveTiers = append(in.LiveTiers, u)
		} else {
			in.Managed = append(in.Managed, u)
		}
	}
	return in
}

// apply makes one write of a plan on the world.
func (w world) apply(pw *plan.PolicyWrite, nw *plan.NamespaceWrite) {
	if nw != nil {
		labels := w.namespaces[nw.Name]
		for k, v := range nw.Set {
			labels[k] = v
		}
		for _, k := range nw.Remove {
			delete(labels, k)
		}
		return
	}
	name := pw.Object.GetKind() + "/" + pw.Object.GetName()
	if pw.Verb == plan.Delete {
		delete(w.policies, name)
		return
	}
	obj := pw.Object
	if pw.OnWritten {
		if cur := w.policies[name]; cur != nil {
			obj = plan.MergeForUpdate(cur, pw.Object)
		}
	}
	w.policies[name] = obj
}

// apiSlice is the EndpointSlice of default/kubernetes, which
// pni-allow-kube-api's services rule matches.
func apiSlice() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
		"metadata":  map[string]any{"name": "kubernetes", "namespace": "default", "labels": map[string]any{"kubernetes.io/service-name": "kubernetes"}},
		"endpoints": []any{map[string]any{"addresses": []any{"10.0.0.1"}, "conditions": map[string]any{"ready": true}}},
		"ports":     []any{map[string]any{"name": "https", "port": int64(6443), "protocol": "TCP"}},
	}}
}

// replayState is a world as the reference evaluator reads it.
func replayState(t *testing.T, w world) *replay.State {
	t.Helper()
	st := replay.NewState()
	for ns, labels := range w.namespaces {
		st.Namespaces[ns] = maps.Clone(labels)
	}
	for _, u := range append(slices.Collect(maps.Values(w.policies)), apiSlice()) {
		if err := st.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// judge evaluates every connection of the probes in a world with the
// reference evaluator of internal/replay, which shares no code with
// calico-pni's own: the verdicts by connection.
func judge(t *testing.T, w world, probes *replay.Probes) map[string]replay.Verdict {
	t.Helper()
	ix := replay.NewIndex(replayState(t, w))
	out := make(map[string]replay.Verdict, len(probes.Conns))
	for _, c := range probes.Conns {
		d, err := ix.Evaluate(c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		out[c.String()] = d.Verdict
	}
	return out
}

// crossCheck compares calico-pni's own evaluator with the reference in a
// world: a scenario's two ends must get the same verdicts from both.
func crossCheck(t *testing.T, w world, probes *replay.Probes, want map[string]replay.Verdict) {
	t.Helper()
	r := objects.NewReader()
	add := func(obj map[string]any) {
		if err := r.Add("model", obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(w.namespaces)) {
		labels := map[string]any{}
		for k, v := range w.namespaces[ns] {
			labels[k] = v
		}
		add(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns, "labels": labels}})
	}
	for _, e := range probes.Endpoints {
		if e.Pod == nil {
			continue
		}
		labels := map[string]any{}
		for k, v := range e.Pod.Labels {
			labels[k] = v
		}
		add(map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": e.Pod.Name, "namespace": e.Pod.Namespace, "labels": labels},
			"spec":     map[string]any{"serviceAccountName": e.Pod.ServiceAccount, "nodeName": "node-1", "containers": []any{map[string]any{"name": "c", "image": "x"}}},
			"status":   map[string]any{"phase": "Running", "podIP": e.Addr.String(), "podIPs": []any{map[string]any{"ip": e.Addr.String()}}},
		})
	}
	add(apiSlice().Object)
	for _, key := range slices.Sorted(maps.Keys(w.policies)) {
		add(w.policies[key].Object)
	}
	set := r.Finish()
	ix := evaluator.NewIndex(&set.Cluster)
	endpoint := func(e *replay.Endpoint) *evaluator.Endpoint {
		if e.Pod == nil {
			return ix.AddrEndpoint(e.Addr)
		}
		ep, err := ix.PodEndpoint(e.Pod.Namespace, e.Pod.Name)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	for _, c := range probes.Conns {
		got := ix.Evaluate(endpoint(c.Src), endpoint(c.Dst), c.Protocol, c.Port)
		ref := want[c.String()]
		if (got.Verdict == evaluator.Allow) != (ref == replay.Allowed) || got.Verdict == evaluator.Indeterminate {
			t.Errorf("%s: calico-pni's evaluator says %v (%s), the reference %v", c, got.Verdict, got.Reason, ref)
		}
	}
}

// scenario is one transition of a model cluster.
type scenario struct {
	cfg           *config.Config
	before, after modelCluster
}

func (s scenario) String() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(s.after)) {
		if s.before[name] != s.after[name] {
			parts = append(parts, fmt.Sprintf("%s %s→%s", name, s.before[name], s.after[name]))
		}
	}
	return strings.Join(parts, ", ")
}

// check plans the scenario and checks every state of the plan. It
// returns the number of states and verdicts checked.
func (s scenario) check(t *testing.T, rnd *rand.Rand) (states, verdicts int) {
	t.Helper()
	start := converged(policies.Generate(s.before.snapshot(), s.cfg))
	desired := policies.Generate(s.after.snapshot(), s.cfg)
	end := converged(desired)
	states, verdicts, _ = checkPasses(t, s.String()+" ("+configName(s.cfg)+")", start, replan(desired), end, rnd, false)
	return states, verdicts
}

// checkPlan checks every state a plan passes through from start, and
// that it ends in end.
func checkPlan(t *testing.T, s string, start world, p plan.Plan, end world, rnd *rand.Rand) (states, verdicts int) {
	t.Helper()
	states, verdicts, _ = checkPasses(t, s, start, func(w world, pass int) (plan.Plan, bool) { return p, pass == 0 }, end, rnd, false)
	return states, verdicts
}

// checkPasses checks the passes next plans, one after the other, until it
// plans no more, against the verdicts of start and end, and that the
// cluster ends as end.
//
// With bounded set, a state with a wrong verdict is counted in gaps and
// the check goes on (for the cases docs/design.md bounds); otherwise it
// fails the test.
func checkPasses(t *testing.T, s string, start world, next func(w world, pass int) (plan.Plan, bool), end world, rnd *rand.Rand, bounded bool) (states, verdicts, gaps int) {
	t.Helper()
	probes, err := replay.SyntheticProbes(replayState(t, start), replayState(t, end))
	if err != nil {
		t.Fatal(err)
	}
	want := judge(t, start, probes)
	after := judge(t, end, probes)
	crossCheck(t, start, probes, want)
	crossCheck(t, end, probes, after)
	agreed := map[string]replay.Verdict{}
	for k, v := range want {
		if after[k] == v {
			agreed[k] = v
		}
	}
	cur := start.clone()
	var done []string
	var p plan.Plan
	for pass := 0; ; pass++ {
		var more bool
		if p, more = next(cur, pass); !more {
			break
		}
		if pass > 5 {
			t.Errorf("%s: still writing after %d passes: %s", s, pass, describePlan(p))
			return
		}
		for _, step := range p.Steps {
			n := len(step.Policies) + len(step.Namespaces)
			write := func(w world, i int) {
				if i < len(step.Policies) {
					w.apply(&step.Policies[i], nil)
				} else {
					w.apply(nil, &step.Namespaces[i-len(step.Policies)])
				}
			}
			for _, subset := range subsets(n, rnd) {
				w := cur.clone()
				for _, i := range subset {
					write(w, i)
				}
				got := judge(t, w, probes)
				states++
				for k, v := range agreed {
					verdicts++
					if got[k] != v && bounded {
						gaps++
					} else if got[k] != v {
						t.Errorf("%s: after %s and writes %v of step %s: %s is %v, both ends say %v\nplan: %s",
							s, strings.Join(done, ", "), writeNames(step, subset), step.Name, k, got[k], v, describePlan(p))
						return
					}
				}
			}
			for i := range n {
				write(cur, i)
			}
			done = append(done, fmt.Sprintf("pass %d %s", pass+1, step.Name))
		}
	}
	// The plans must end where the generator wants the cluster.
	for name, labels := range end.namespaces {
		if !maps.Equal(labels, cur.namespaces[name]) && p.Held[name] == "" {
			t.Errorf("%s: namespace %s ends with %v, want %v\nplan: %s", s, name, cur.namespaces[name], labels, describePlan(p))
		}
	}
	if got, want := slices.Sorted(maps.Keys(cur.policies)), slices.Sorted(maps.Keys(end.policies)); !slices.Equal(got, want) {
		t.Errorf("%s: policies end as %v, want %v\nplan: %s", s, got, want, describePlan(p))
	}
	return states, verdicts, gaps
}

// subsets lists the sets of a step's writes to apply: every subset of a
// small step, prefixes and random subsets of a large one.
func subsets(n int, rnd *rand.Rand) [][]int {
	var out [][]int
	if n <= 6 {
		for mask := 1; mask < 1<<n; mask++ {
			var s []int
			for i := range n {
				if mask&(1<<i) != 0 {
					s = append(s, i)
				}
			}
			out = append(out, s)
		}
		return out
	}
	for i := 1; i < n; i++ {
		out = append(out, rnd.Perm(n)[:i])
	}
	return out
}

func writeNames(step plan.Step, subset []int) []string {
	var out []string
	for _, i := range subset {
		if i < len(step.Policies) {
			out = append(out, step.Policies[i].Verb+" "+step.Policies[i].Name)
		} else {
			w := step.Namespaces[i-len(step.Policies)]
			out = append(out, fmt.Sprintf("%s%v-%v", w.Name, w.Set, w.Remove))
		}
	}
	return out
}

func describePlan(p plan.Plan) string {
	var parts []string
	for _, s := range p.Steps {
		var ws []string
		for _, w := range s.Policies {
			ws = append(ws, w.Verb+" "+w.Name)
		}
		for _, w := range s.Namespaces {
			ws = append(ws, fmt.Sprintf("%s%v-%v", w.Name, w.Set, w.Remove))
		}
		parts = append(parts, s.Name+"["+strings.Join(ws, "; ")+"]")
	}
	return strings.Join(parts, " ")
}

func configName(cfg *config.Config) string {
	if len(cfg.ProjectPeers) > 0 {
		return "with project peers"
	}
	if !cfg.IsolateEgress {
		return "ingress only"
	}
	return "default configuration"
}

func configs(t *testing.T) []*config.Config {
	plain := config.Default()
	ingressOnly := config.Default()
	ingressOnly.IsolateEgress = false
	peers, err := config.Parse([]byte("projectPeers:\n- project: p-b\n  from: [p-a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []*config.Config{plain, ingressOnly, peers}
}

// Two namespaces change situation at once, in every combination of the
// situations, under three configurations.
func TestModelCheckTwoNamespaces(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var scenarios, states, verdicts int
	for ci, cfg := range configs(t) {
		i := 0
		for _, b1 := range situations {
			for _, a1 := range situations {
				for _, b2 := range situations {
					for _, a2 := range situations {
						i++
						if b1 == a1 && b2 == a2 || skipUnderRace(ci*1000+i) {
							continue
						}
						s := scenario{cfg: cfg, before: maps.Clone(observers), after: maps.Clone(observers)}
						s.before["m1"], s.after["m1"] = b1, a1
						s.before["m2"], s.after["m2"] = b2, a2
						n, v := s.check(t, rnd)
						scenarios, states, verdicts = scenarios+1, states+n, verdicts+v
						if t.Failed() {
							return
						}
					}
				}
			}
		}
	}
	t.Logf("%d transitions, %d states, %d verdicts checked", scenarios, states, verdicts)
}

// Three or four namespaces change at once, drawn at random (fixed seed).
func TestModelCheckSeveralNamespaces(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	all := append(slices.Clone(situations), projectC)
	var scenarios, states, verdicts int
	for i := range 300 {
		if skipUnderRace(i) {
			continue
		}
		cfg := configs(t)[i%3]
		s := scenario{cfg: cfg, before: maps.Clone(observers), after: maps.Clone(observers)}
		for m := range 3 + i%2 {
			name := fmt.Sprintf("m%d", m+1)
			s.before[name], s.after[name] = all[rnd.IntN(len(all))], all[rnd.IntN(len(all))]
		}
		n, v := s.check(t, rnd)
		scenarios, states, verdicts = scenarios+1, states+n, verdicts+v
		if t.Failed() {
			return
		}
	}
	t.Logf("%d transitions, %d states, %d verdicts checked", scenarios, states, verdicts)
}

// empty is a cluster without calico-pni: its namespaces, no labels of
// calico-pni's, no policies.
func empty(m modelCluster) world {
	w := world{api: api328, namespaces: map[string]map[string]string{}, policies: map[string]*unstructured.Unstructured{}}
	for name := range m {
		w.namespaces[name] = map[string]string{}
	}
	return w
}

func randomCluster(rnd *rand.Rand, n int) modelCluster {
	all := append(slices.Clone(situations), projectC)
	m := modelCluster{"kube-system": system}
	for i := range n {
		m[fmt.Sprintf("ns%d", i)] = all[rnd.IntN(len(all))]
	}
	return m
}

// calico-pni installed on a cluster without isolation: its first pass.
func TestModelCheckColdStart(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	var states, verdicts int
	for i := range 60 {
		if skipUnderRace(i) {
			continue
		}
		m := randomCluster(rnd, 4+i%3)
		cfg := configs(t)[i%3]
		desired := policies.Generate(m.snapshot(), cfg)
		start := empty(m)
		n, v := checkPlan(t, fmt.Sprintf("cold start of %v (%s)", m, configName(cfg)), start, plan.Pass(start.input(desired)), converged(desired), rnd)
		states, verdicts = states+n, verdicts+v
		if t.Failed() {
			return
		}
	}
	t.Logf("%d states, %d verdicts checked", states, verdicts)
}

// calico-pni cleanup (helm uninstall) of a cluster it isolates.
func TestModelCheckCleanup(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	var states, verdicts int
	for i := range 60 {
		if skipUnderRace(i) {
			continue
		}
		m := randomCluster(rnd, 4+i%3)
		cfg := configs(t)[i%3]
		start := converged(policies.Generate(m.snapshot(), cfg))
		in := start.input(policies.Desired{})
		var managed []*unstructured.Unstructured
		managed = append(managed, in.Managed...)
		n, v := checkPlan(t, fmt.Sprintf("cleanup of %v (%s)", m, configName(cfg)), start, plan.Cleanup(in.Namespaces, managed), empty(m), rnd)
		states, verdicts = states+n, verdicts+v
		if t.Failed() {
			return
		}
	}
	t.Logf("%d states, %d verdicts checked", states, verdicts)
}

// replan plans passes toward desired until one plans nothing: a change
// between tiers takes two.
func replan(desired policies.Desired) func(world, int) (plan.Plan, bool) {
	return func(w world, _ int) (plan.Plan, bool) {
		p := plan.Pass(w.input(desired))
		return p, len(p.Steps) > 0 && !onlyStatus(p)
	}
}

func onlyStatus(p plan.Plan) bool {
	for _, s := range p.Steps {
		if len(s.Policies) > 0 {
			return false
		}
		for _, w := range s.Namespaces {
			if len(w.Set)+len(w.Remove) > 0 {
				return false
			}
		}
	}
	return true
}

// The configuration changes: isolation of egress switched, calico-pni's
// policies moved between the default tier and its own, a project staged
// and enforced again, everything staged, project peers added (Calico
// 3.30, which has tiers and staged policies).
func TestModelCheckConfigurationChanges(t *testing.T) {
	parse := func(text string) *config.Config {
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfgs := map[string]*config.Config{
		"default tier":          parse("enforcement: default-tier\n"),
		"own tier":              parse("enforcement: tier\n"),
		"ingress only":          parse("enforcement: default-tier\nisolateEgress: false\n"),
		"own tier ingress only": parse("enforcement: tier\nisolateEgress: false\n"),
		"p-a staged":            parse("enforcement: tier\nprojects:\n  stage: [p-a]\n"),
		"all staged":            parse("enforcement: tier\nrollout: stage\n"),
		"peers":                 parse("enforcement: tier\nprojectPeers:\n- project: p-b\n  from: [p-a]\n"),
	}
	m := maps.Clone(observers)
	m["m1"], m["m2"] = projectA, projectB
	rnd := rand.New(rand.NewPCG(9, 10))
	var states, verdicts, switches, compound, gaps int
	for _, from := range slices.Sorted(maps.Keys(cfgs)) {
		for _, to := range slices.Sorted(maps.Keys(cfgs)) {
			if from == to {
				continue
			}
			switches++
			if skipUnderRace(switches) {
				continue
			}
			snap := m.snapshotAt(api330.Version)
			start := convergedIn(api330, policies.Generate(snap, cfgs[from]))
			desired := policies.Generate(snap, cfgs[to])
			// A change of the staging together with isolateEgress or the
			// tier is two transitions in one, which the passes make one
			// after the other: bounded in docs/design.md.
			both := staging(cfgs[from]) != staging(cfgs[to]) &&
				(cfgs[from].IsolateEgress != cfgs[to].IsolateEgress || cfgs[from].Enforcement != cfgs[to].Enforcement)
			n, v, g := checkPasses(t, from+" → "+to, start, replan(desired), convergedIn(api330, desired), rnd, both)
			states, verdicts, gaps = states+n, verdicts+v, gaps+g
			if both {
				compound++
			}
			if t.Failed() {
				return
			}
		}
	}
	t.Logf("%d switches (%d of staging with egress or tier), %d states, %d verdicts checked, %d wrong in the bounded compound switches", switches, compound, states, verdicts, gaps)
}

// staging says which projects a configuration stages.
func staging(cfg *config.Config) string {
	return cfg.Rollout + " " + strings.Join(cfg.Projects.Stage, ",")
}
