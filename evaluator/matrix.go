package evaluator

import (
	"cmp"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/calico-pni/calico-pni/calico"
)

// MatrixOptions says what a matrix shows.
type MatrixOptions struct {
	// Protocol is TCP, UDP or SCTP.
	Protocol string
	// Port is the destination port; 0 evaluates every port.
	Port uint16
	// GroupOf returns the row and column a namespace belongs to (its
	// project, or its name); "" leaves the namespace out.
	GroupOf func(ns *Namespace) string
	// Workers evaluates pairs in parallel (default: the number of CPUs).
	Workers int
	// fullPath evaluates every pair in full, for tests of the tables.
	fullPath bool
}

// Matrix says who can reach whom, group by group.
type Matrix struct {
	Protocol string
	Port     uint16
	Groups   []string
	// Cells[i][j] is traffic from the pods of Groups[i] to those of
	// Groups[j].
	Cells [][]Cell
	// Pods, Namespaces and Classes count what was evaluated: one
	// evaluation per pair of classes of pods that behave alike.
	Pods, Namespaces, Classes int
	// Empty lists the namespaces without a running pod, and Skipped the
	// pods that do not run (with why).
	Empty, Skipped []string
}

// Cell is the verdict for the pod pairs of two groups.
type Cell struct {
	// Verdict is Allow, Deny, Partial (some pairs or ports only),
	// Indeterminate, or "" when there is no pair.
	Verdict Verdict
	// Pairs counts pod pairs; Allowed, Denied and Undecided split them
	// (a pair allowed on some ports only counts as allowed, and also in
	// Partial).
	Pairs, Allowed, Denied, Undecided, Partial int
	// Ports are the ports allowed to the pairs allowed on some ports
	// only, when the matrix covers every port.
	Ports []PortRange
	// AllowedBy and DeniedBy name the policies (or ends of tier) that
	// allowed or denied pairs, at most maxDeciders of each.
	AllowedBy, DeniedBy []string
	// Reason is why a pair could not be decided, for the first one.
	Reason string
	last   *pairResult
}

const maxDeciders = 6

// pairResult is the evaluation of one pair of classes.
type pairResult struct {
	verdict             Verdict
	ports               []PortRange
	allowedBy, deniedBy []string
	reason              string
}

// key identifies a result by its content.
func (p *pairResult) key() string {
	var b strings.Builder
	b.WriteString(string(p.verdict) + "|" + p.reason + "|")
	for _, r := range p.ports {
		b.WriteString(r.String() + ",")
	}
	b.WriteString("|" + strings.Join(p.allowedBy, ",") + "|" + strings.Join(p.deniedBy, ","))
	return b.String()
}

type classMember struct {
	class int
	group int
}

// memberCount is a class in a group, with the number of its pods there
// and the group's place in the matrix.
type memberCount struct {
	classMember
	count, place int
}

// Matrix evaluates every pair of pods of the cluster, one pair of classes
// at a time, and sums them up by group.
func (ix *Index) Matrix(o MatrixOptions) *Matrix {
	m := &Matrix{Protocol: o.Protocol, Port: o.Port}
	endpoints, groupsOf, hosts := ix.matrixEndpoints(o, m)
	// Classes: one representative endpoint each, and how many pods of
	// each group they stand for.
	cl := ix.newClassifier(hosts)
	classOf := map[string]int{}
	var reps []*Endpoint
	counts := map[classMember]int{}
	for i, ep := range endpoints {
		sig := cl.signature(ep)
		c, ok := classOf[sig]
		if !ok {
			c = len(reps)
			classOf[sig] = c
			reps = append(reps, ep)
		}
		counts[classMember{c, groupsOf[i]}]++
	}
	m.Classes = len(reps)
	ix.fillCells(m, reps, counts, o)
	slices.Sort(m.Groups)
	for i := range m.Cells {
		for j := range m.Cells[i] {
			m.Cells[i][j].finish()
		}
	}
	return m
}

// matrixEndpoints collects the pods of the grouped namespaces, each with
// its group's index in m.Groups, and counts namespaces, pods and what is
// skipped or empty.
func (ix *Index) matrixEndpoints(o MatrixOptions, m *Matrix) (endpoints []*Endpoint, groupsOf []int, hosts bool) {
	groupIndex := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(ix.namespaces)) {
		g := o.GroupOf(ix.namespaces[name])
		if g == "" {
			continue
		}
		m.Namespaces++
		running := 0
		for _, p := range ix.podsByNS[name] {
			ep := ix.podEndpoint(p)
			if ep.Unknown != "" {
				m.Skipped = append(m.Skipped, ep.Unknown)
				continue
			}
			if _, ok := groupIndex[g]; !ok {
				groupIndex[g] = len(m.Groups)
				m.Groups = append(m.Groups, g)
			}
			hosts = hosts || ep.Kind == HostEndpointKind
			endpoints = append(endpoints, ep)
			groupsOf = append(groupsOf, groupIndex[g])
			running++
		}
		if running == 0 {
			m.Empty = append(m.Empty, name)
		}
	}
	m.Pods = len(endpoints)
	return endpoints, groupsOf, hosts
}

// fillCells sums every pair of classes up into the cells of their groups,
// in a stable order: each source group's row is filled by one worker, so
// no cell is shared.
func (ix *Index) fillCells(m *Matrix, reps []*Endpoint, counts map[classMember]int, o MatrixOptions) {
	members := slices.SortedFunc(maps.Keys(counts), func(a, b classMember) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.class, b.class))
	})
	order := sortedGroups(m.Groups)
	m.Cells = make([][]Cell, len(m.Groups))
	for i := range m.Cells {
		m.Cells[i] = make([]Cell, len(m.Groups))
	}
	var egress, ingress *sideTable
	if len(ix.unsupported) == 0 && !o.fullPath {
		egress, ingress = newSideTable(ix, calico.Egress, reps, o), newSideTable(ix, calico.Ingress, reps, o)
	}
	counted := make([]memberCount, len(members))
	byGroup := map[int][]memberCount{}
	for i, a := range members {
		counted[i] = memberCount{a, counts[a], order[a.group]}
		byGroup[a.group] = append(byGroup[a.group], counted[i])
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	groups := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := &pairer{ix: ix, reps: reps, o: o, egress: egress, ingress: ingress, results: map[string]*pairResult{}}
			for g := range groups {
				row := m.Cells[order[g]]
				for _, a := range byGroup[g] {
					for _, b := range counted {
						n := a.count * b.count
						if a.classMember == b.classMember {
							n = a.count * (a.count - 1)
						}
						if n > 0 {
							row[b.place].add(pr.pair(a.class, b.class), n)
						}
					}
				}
			}
		}()
	}
	for g := range m.Groups {
		groups <- g
	}
	close(groups)
	wg.Wait()
}

// pairer evaluates pairs of classes for one worker, looking sides up in
// the tables where it can and remembering the combinations it made.
type pairer struct {
	ix              *Index
	reps            []*Endpoint
	o               MatrixOptions
	egress, ingress *sideTable
	// recent remembers the last combinations of outcomes, one per slot:
	// most pairs repeat a few combinations. results holds one copy of
	// each distinct result, which cells share.
	recent [1 << 14]struct {
		egress, ingress int64
		result          *pairResult
	}
	results map[string]*pairResult
}

func (p *pairer) pair(s, d int) *pairResult {
	if p.egress == nil || p.egress.keys[s] == nil || p.ingress.keys[d] == nil {
		r := p.ix.evaluatePair(p.reps[s], p.reps[d], p.o)
		return &r
	}
	e := p.egress.outcome(s, d)
	in := p.ingress.outcome(d, s)
	slot := &p.recent[uint64(e.id*1_000_003+in.id)%uint64(len(p.recent))]
	if slot.result != nil && slot.egress == e.id && slot.ingress == in.id {
		return slot.result
	}
	c := combine(e, in)
	key := c.key()
	r, ok := p.results[key]
	if !ok {
		r = &c
		p.results[key] = r
	}
	slot.egress, slot.ingress, slot.result = e.id, in.id, r
	return r
}

// sortedGroups maps each group's index to its place in name order.
func sortedGroups(groups []string) map[int]int {
	idx := make([]int, len(groups))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(groups[a], groups[b]) })
	out := make(map[int]int, len(groups))
	for place, i := range idx {
		out[i] = place
	}
	return out
}

func (ix *Index) evaluatePair(src, dst *Endpoint, o MatrixOptions) pairResult {
	var p pairResult
	add := func(r Result) {
		d := Decider(r)
		switch r.Verdict {
		case Allow:
			if !slices.Contains(p.allowedBy, d) {
				p.allowedBy = append(p.allowedBy, d)
			}
		case Deny:
			if !slices.Contains(p.deniedBy, d) {
				p.deniedBy = append(p.deniedBy, d)
			}
		default:
			if p.reason == "" {
				p.reason = r.Reason
			}
		}
	}
	if o.Port != 0 {
		r := ix.Evaluate(src, dst, o.Protocol, o.Port)
		p.verdict = r.Verdict
		add(r)
		return p
	}
	s := ix.EvaluateAllPorts(src, dst, o.Protocol)
	p.verdict = s.Verdict
	if s.Verdict == Partial {
		p.ports = s.Allowed
	}
	for _, seg := range s.Segments {
		add(seg.Result)
	}
	return p
}
