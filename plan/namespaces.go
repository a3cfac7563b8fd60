package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/policies"
)

// Namespace is what a plan reads of a live namespace.
type Namespace struct {
	Labels          map[string]string
	Annotations     map[string]string
	Deleting        bool
	ResourceVersion string
}

// The namespace steps, in the order a plan writes them. A namespace's
// isolation and project change in steps of their own:
//
//   - relabel: the project labels of namespaces that are not isolated
//     (their own walls do not exist, and every namespace that isolated
//     peers will admit by project carries its project before any of them
//     is isolated: cluster DNS answering a freshly isolated namespace, a
//     project's namespaces isolated one after the other);
//   - isolate: isolation switched on (or a staged namespace promoted);
//   - move: the project label of one isolated namespace that stays
//     isolated;
//   - release: isolation switched off, the project label left as it was
//     (so that isolated peers still admit the namespace by its project);
//   - relabel-released: the project labels of the namespaces just
//     released;
//   - status: everything else (status, staged label, stray labels).
//
// When more than one namespace changes project and they could meet in a
// state that mixes old and new labels (several isolated namespaces move,
// or isolated and not isolated ones do), the project labels change in
// transit instead (transit.go): transit-1, transit-2, the transit forms
// of the policies, transit-3, isolate, release, transit-4, the plain
// forms, transit-5.
const (
	phaseRelabel = iota
	phaseTransit1
	phaseTransit2
	phaseTransit3
	phaseIsolate
	phaseMove
	phaseRelease
	phaseRelabelReleased
	phaseTransit4
	phaseTransit5
	phaseStatus
	phases
)

var phaseNames = [phases]string{"relabel", "transit-1", "transit-2", "transit-3", "isolate", "move", "release", "relabel-released", "transit-4", "transit-5", "status"}

// phaseEffects says what each namespace step waits for and makes (see
// Effect). Steps that isolate a namespace, or move it between the rules
// of projects, wait for the policies written before them. Relabelling a
// namespace that is not isolated relies on no new policy (no isolated peer
// admits it by a policy of this pass before isolate), and neither does
// releasing one; transit-1 and transit-2 mean nothing under the plain
// policies, transit-5 nothing under either form.
var phaseEffects = [phases][2]Effect{
	phaseRelabel:         {0, Relabels},
	phaseTransit1:        {0, Relabels},
	phaseTransit2:        {0, Relabels},
	phaseTransit3:        {Widens, Relabels},
	phaseIsolate:         {Widens, Relabels},
	phaseMove:            {Widens, Relabels},
	phaseRelease:         {0, Relabels},
	phaseRelabelReleased: {0, Relabels},
	phaseTransit4:        {0, Relabels},
	phaseTransit5:        {0, 0},
	phaseStatus:          {0, 0},
}

// namespaceSteps is the namespace writes of a plan, by phase.
type namespaceSteps struct {
	writes [phases][]NamespaceWrite
	// transit is true when project labels change in transit; projects
	// then holds every project a namespace moves from or to, and moving
	// the namespaces in transit.
	transit  bool
	projects map[string]bool
	moving   []string
	// held maps the namespaces that wait to the reason.
	held map[string]string
	// states counts the namespaces by the state they end in.
	states map[policies.State]int
}

// change is one namespace's way from its live labels to its desired ones.
type change struct {
	name       string
	cur, want  map[string]string
	status     string
	wantStatus bool
	from       *policies.Status
	to         policies.Status
	before     string
	restored   []string
	stage      int
	write      bool
}

func (c *change) isolatedBefore() bool { return c.cur[policies.IsolatedLabel] == "true" }
func (c *change) isolatedAfter() bool  { return c.want[policies.IsolatedLabel] == "true" }
func (c *change) projectBefore() string {
	if b, ok := c.cur[policies.ProjectBeforeLabel]; ok {
		return b
	}
	return c.cur[policies.ProjectLabel]
}
func (c *change) projectAfter() string { return c.want[policies.ProjectLabel] }

// moves reports whether the namespace changes project (or is in the
// middle of a move).
func (c *change) moves() bool {
	return c.stage != notInTransit || c.cur[policies.ProjectLabel] != c.want[policies.ProjectLabel]
}

// planNamespaces computes the writes that bring every namespace's
// calico-pni labels and status to the desired state. A namespace whose
// required policies are not all in place (inPlace says why) is held: its
// calico-pni labels stay as they are, so it is never isolated without the
// allows it needs, and its status says what it waits for.
//
// hold, when it returns a reason for a change, holds the namespace with
// that reason.
func planNamespaces(desired []policies.NamespaceState, live map[string]Namespace, inPlace func(name string) (bool, string), hold func(*change) string) namespaceSteps {
	out := namespaceSteps{held: map[string]string{}, states: map[policies.State]int{}}
	enc := newEncoder()
	var changes []*change
	for _, d := range desired {
		view, ok := live[d.Name]
		if !ok || view.Deleting || settled(view, d, enc.encode, inPlace) {
			out.states[d.Status.State]++
			continue
		}
		c := planChange(d, view, enc, inPlace, out.held, hold)
		out.states[c.to.State]++
		if c.write {
			changes = append(changes, c)
		}
	}
	isolatedBefore, isolatedAfter := false, false
	for _, ns := range live {
		isolatedBefore = isolatedBefore || ns.Labels[policies.IsolatedLabel] == "true"
	}
	for _, c := range changes {
		isolatedAfter = isolatedAfter || c.isolatedAfter()
	}
	for _, d := range desired {
		isolatedAfter = isolatedAfter || d.Labels[policies.IsolatedLabel] == "true"
	}
	out.transit = needsTransit(changes, isolatedBefore, isolatedAfter)
	if out.transit {
		out.projects = map[string]bool{}
		for _, c := range changes {
			if c.moves() {
				out.projects[c.projectBefore()] = true
				out.projects[c.projectAfter()] = true
				out.moving = append(out.moving, c.name)
			}
		}
		delete(out.projects, "")
	}
	for _, c := range changes {
		out.add(c, enc)
	}
	return out
}

// planChange compares one namespace with its desired state (write is
// false when there is nothing to write).
func planChange(d policies.NamespaceState, view Namespace, enc *encoder, inPlace func(string) (bool, string), held map[string]string, hold func(*change) string) *change {
	c := &change{name: d.Name, cur: ownLabels(view.Labels), want: d.Labels, before: view.ResourceVersion}
	c.stage = transitStage(c.cur)
	st := d.Status
	if why := hold(c); why != "" {
		st.Problems = slices.Clone(st.Problems)
		st.Isolated = c.isolatedBefore()
		st.AddProblem("waits as it is: " + why)
		held[d.Name] = why
		c.want = c.cur
		c.stage = notInTransit
	}
	if d.Status.Isolated && c.stage == notInTransit && held[d.Name] == "" {
		var waiting []string
		for _, name := range d.Requires {
			if ok, why := inPlace(name); !ok {
				waiting = append(waiting, fmt.Sprintf("%s (%s)", name, why))
			}
		}
		if len(waiting) > 0 {
			// The generator's slices may be shared: copy before adding.
			st.Problems = slices.Clone(st.Problems)
		}
		switch {
		case len(waiting) == 0:
		case maps.Equal(c.cur, c.want):
			st.AddProblem("these policies are not in place: " + strings.Join(waiting, "; "))
		default:
			c.want = c.cur
			st.Isolated = c.cur[policies.IsolatedLabel] == "true"
			st.AddProblem("held as it is until these policies are in place: " + strings.Join(waiting, "; "))
			held[d.Name] = strings.Join(waiting, "; ")
		}
	}
	c.to = st
	c.status = enc.encode(st)
	old, had := view.Annotations[policies.StatusAnnotation]
	c.wantStatus = !had || old != c.status
	c.write = !maps.Equal(c.cur, c.want) || c.wantStatus
	if !c.write {
		return c
	}
	if had {
		if old == c.status {
			c.restored = changedKeys(c.cur, c.want)
		}
		if prev, err := policies.DecodeStatus(old); err == nil {
			c.from = &prev
		}
	}
	return c
}

// needsTransit decides whether the project labels change in transit.
// They need not when nothing can judge a namespace by a label while it
// changes: no namespace is isolated before the pass (the labels change
// before any namespace is isolated: a cold start) or none after it (they
// change once none is isolated any more: everything released), or one
// namespace alone changes project and no other namespace is isolated or
// released meanwhile. Otherwise a namespace whose label is old or new
// meets peers whose isolation or labels are too: a move of two
// namespaces together, or of one while another is released, lets a pair
// through a state neither end has.
func needsTransit(changes []*change, isolatedBefore, isolatedAfter bool) bool {
	movers, flips := 0, 0
	for _, c := range changes {
		switch {
		case c.stage != notInTransit:
			return true
		case c.moves():
			movers++
		case c.isolatedBefore() != c.isolatedAfter():
			flips++
		}
	}
	switch {
	case movers == 0, !isolatedBefore, !isolatedAfter:
		return false
	}
	return movers > 1 || flips > 0
}

// stop is a namespace's labels after one of its writes.
type stop struct {
	phase  int
	labels map[string]string
}

// add plans one namespace's writes, phase by phase.
func (s *namespaceSteps) add(c *change, enc *encoder) {
	first := true
	prev := c.cur
	stops := s.stops(c)
	for i, st := range stops {
		final := i == len(stops)-1
		set, remove := diff(prev, st.labels)
		prev = st.labels
		if len(set) == 0 && len(remove) == 0 && !(final && c.wantStatus) {
			continue
		}
		w := NamespaceWrite{Name: c.name, Set: set, Remove: remove, Before: c.before}
		switch {
		case final:
			if c.wantStatus {
				w.Status = c.status
			}
			w.From, w.To, w.Last, w.Restored = c.from, c.to, true, c.restored
		case first && s.transit && c.moves():
			// The first write of a move says where the namespace goes.
			st := c.to
			st.Transition = fmt.Sprintf("moving from %s to %s (%d namespaces move at once)", projectName(c.projectBefore()), projectName(c.projectAfter()), len(s.moving))
			w.Status = enc.encode(st)
		}
		first = false
		s.writes[st.phase] = append(s.writes[st.phase], w)
	}
}

// stops returns the labels a namespace carries after each of its writes,
// the last being the desired ones.
func (s *namespaceSteps) stops(c *change) []stop {
	labels := c.cur
	var stops []stop
	to := func(phase int, edit func(map[string]string)) {
		next := maps.Clone(labels)
		edit(next)
		if !maps.Equal(next, labels) {
			stops = append(stops, stop{phase, next})
			labels = next
		}
	}
	on := !c.isolatedBefore() && c.isolatedAfter()
	off := c.isolatedBefore() && !c.isolatedAfter()
	last := phaseStatus
	switch {
	case s.transit && c.moves():
		if c.stage < hasBefore {
			to(phaseTransit1, func(m map[string]string) { m[policies.ProjectBeforeLabel] = c.cur[policies.ProjectLabel] })
		}
		if c.stage < hasAfter {
			to(phaseTransit2, func(m map[string]string) { m[policies.ProjectAfterLabel] = c.projectAfter() })
		}
		if c.stage < switched {
			to(phaseTransit3, c.setProject)
		}
		if on {
			to(phaseIsolate, c.isolate)
		}
		if off {
			to(phaseRelease, c.release)
		}
		to(phaseTransit4, func(m map[string]string) { delete(m, policies.ProjectBeforeLabel) })
		last = phaseTransit5
	case c.moves() && !c.isolatedBefore():
		to(phaseRelabel, c.setProject)
		last = phaseRelabel
		if on {
			last = phaseIsolate
		}
	case c.moves() && c.isolatedAfter():
		last = phaseMove
	case c.moves():
		to(phaseRelease, c.release)
		last = phaseRelabelReleased
	case on:
		last = phaseIsolate
	case off:
		last = phaseRelease
	}
	if n := len(stops); n > 0 && stops[n-1].phase == last {
		stops[n-1].labels = c.want
	} else {
		stops = append(stops, stop{last, c.want})
	}
	return stops
}

// setProject, isolate and release edit labels toward the desired ones:
// the project label, isolation switched on (a staged namespace
// promoted), isolation switched off (the staged label set if wanted).
func (c *change) setProject(m map[string]string) {
	if p := c.projectAfter(); p != "" {
		m[policies.ProjectLabel] = p
	} else {
		delete(m, policies.ProjectLabel)
	}
}

func (c *change) isolate(m map[string]string) {
	m[policies.IsolatedLabel] = "true"
	if _, staged := c.want[policies.StagedLabel]; !staged {
		delete(m, policies.StagedLabel)
	}
}

func (c *change) release(m map[string]string) {
	delete(m, policies.IsolatedLabel)
	if v, staged := c.want[policies.StagedLabel]; staged {
		m[policies.StagedLabel] = v
	}
}

func projectName(p string) string {
	if p == "" {
		return "no project"
	}
	return "project " + p
}

// diff returns the labels to set and to remove to go from a to b.
func diff(a, b map[string]string) (map[string]string, []string) {
	var set map[string]string
	var remove []string
	for k, v := range b {
		if old, ok := a[k]; !ok || old != v {
			if set == nil {
				set = map[string]string{}
			}
			set[k] = v
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			remove = append(remove, k)
		}
	}
	slices.Sort(remove)
	return set, remove
}

func changedKeys(a, b map[string]string) []string {
	set, remove := diff(a, b)
	return slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
		for _, k := range remove {
			if !yield(k) {
				return
			}
		}
	})
}

// encoder encodes statuses, each distinct one once: namespaces of one
// project mostly carry the same status. The policy lists are shared, so
// their address tells them apart.
type encoder struct {
	seen map[statusShape]string
}

type statusShape struct {
	state    policies.State
	isolated bool
	project  string
	tier     string
	reason   string
	list     *string
	n        int
	// rancher names Rancher's policies in the namespace: a list of each
	// namespace's own, so it is told apart by content.
	rancher string
}

func newEncoder() *encoder { return &encoder{seen: map[statusShape]string{}} }

func (e *encoder) encode(st policies.Status) string {
	if len(st.Problems) > 0 || len(st.Exposures) > 0 || len(st.Policies) == 0 || st.Transition != "" {
		return st.Encode()
	}
	k := statusShape{st.State, st.Isolated, st.Project, st.Tier, st.Reason, &st.Policies[0], len(st.Policies), strings.Join(st.Rancher, "\x00")}
	if v, ok := e.seen[k]; ok {
		return v
	}
	v := st.Encode()
	e.seen[k] = v
	return v
}

// settled reports whether a namespace already carries exactly the desired
// calico-pni labels and status, with every policy it needs in place (so
// that no hold changes its status).
func settled(view Namespace, d policies.NamespaceState, encode func(policies.Status) string, inPlace func(string) (bool, string)) bool {
	own := 0
	for k, v := range view.Labels {
		if strings.HasPrefix(k, policies.LabelPrefix) {
			own++
			if w, ok := d.Labels[k]; !ok || w != v {
				return false
			}
		}
	}
	if own != len(d.Labels) {
		return false
	}
	if status, ok := view.Annotations[policies.StatusAnnotation]; !ok || status != encode(d.Status) {
		return false
	}
	if d.Status.Isolated {
		for _, name := range d.Requires {
			if ok, _ := inPlace(name); !ok {
				return false
			}
		}
	}
	return true
}

// ownLabels returns the calico-pni.io/ labels of a namespace.
func ownLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, policies.LabelPrefix) {
			out[k] = v
		}
	}
	return out
}
