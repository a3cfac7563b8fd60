package replay

import (
	"fmt"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// Report is what a replay found.
type Report struct {
	// Writes is the number of committed writes replayed; Failed and
	// NoOps those left out (see Commits), Ignored those to what decides
	// no connection (leases, ...).
	Writes, Failed, NoOps, Ignored int
	// States is the number of states evaluated: the start and one after
	// each replayed write.
	States int
	// Conns is the number of connections judged: those whose ends exist
	// and whose verdicts agree at the start and at the end. Changed
	// counts those whose verdict the writes changed, Absent those with an
	// end that does not exist at the start or at the end.
	Conns, Changed, Absent int
	// Verdicts is the number of verdicts checked after the writes, and
	// Wrong how many differed from the start and end.
	Verdicts, Wrong int
	Gaps            []Gap
	// Errors are what the replay could not decide.
	Errors []string
}

// Gap is a connection whose verdict, after a write, differed from the
// verdict it has both before the writes and after them.
type Gap struct {
	// After is the index of the write among the replayed writes, in
	// commit order from 0 (writes to what decides no connection left
	// out); Write is the write itself.
	After int
	Write testbed.Write
	Conn  Conn
	// Want is the verdict at the start and at the end, Got the decision
	// after the write.
	Want Verdict
	Got  Decision
}

func (g Gap) String() string {
	return fmt.Sprintf("after write %d (%s %s %s/%s by %s): %s is %s, before and after the writes %s",
		g.After, g.Write.Verb, g.Write.Resource, g.Write.Namespace, g.Write.Name, g.Write.Writer, g.Conn, g.Got, g.Want)
}

// String is a summary with every gap and error, one a line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d writes replayed (%d failed, %d no-ops, %d ignored), %d states, %d connections judged (%d changed, %d absent), %d verdicts checked, %d wrong, %d gaps, %d errors",
		r.Writes, r.Failed, r.NoOps, r.Ignored, r.States, r.Conns, r.Changed, r.Absent, r.Verdicts, r.Wrong, len(r.Gaps), len(r.Errors))
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "\n  gap %s", g)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n  error %s", e)
	}
	return b.String()
}

// Fail reports every gap and error of the replay as a test error.
func (r *Report) Fail(t testing.TB) {
	t.Helper()
	for _, g := range r.Gaps {
		t.Errorf("gap %s", g)
	}
	for _, e := range r.Errors {
		t.Errorf("replay: %s", e)
	}
}

// maxErrors bounds the errors a report lists.
const maxErrors = 50

func (r *Report) addError(err error) {
	if len(r.Errors) < maxErrors {
		r.Errors = append(r.Errors, err.Error())
	} else if len(r.Errors) == maxErrors {
		r.Errors = append(r.Errors, "(more errors left out)")
	}
}

// Check replays writes (in any order; Order sorts them) on a copy of the
// start state and evaluates the probes' connections in the start state,
// after each committed write, and so in the final state. A connection
// whose ends exist at the start and at the end and whose verdicts there
// agree is judged: after each write its verdict must be the same, and a
// gap is reported each time it becomes different (a state where one of
// its ends does not exist is not judged).
func Check(start *State, writes []testbed.Write, probes *Probes) *Report {
	r := &Report{}
	commits, err := Order(writes)
	r.Failed, r.NoOps = commits.Failed, commits.NoOps
	if err != nil {
		r.addError(err)
		return r
	}
	relevant, err := r.relevant(start, commits.Writes)
	if err != nil {
		r.addError(err)
		return r
	}
	c := newCompiler()
	final := start.Clone()
	for _, w := range relevant {
		_ = final.Apply(w) // relevant found no error
	}
	judged, want := r.judge(c, start, final, probes)
	wrong := make([]bool, len(judged))
	cur := start.Clone()
	r.States = 1
	for i, w := range relevant {
		_ = cur.Apply(w)
		r.States++
		ix := c.index(cur)
		for j, conn := range judged {
			if !exists(cur, conn) {
				wrong[j] = false
				continue
			}
			d, err := ix.Evaluate(conn)
			if err != nil {
				r.addError(fmt.Errorf("after write %d (%s): %w", i, w, err))
				continue
			}
			r.Verdicts++
			if d.Verdict == want[j] {
				wrong[j] = false
				continue
			}
			r.Wrong++
			if !wrong[j] {
				r.Gaps = append(r.Gaps, Gap{After: i, Write: w, Conn: conn, Want: want[j], Got: d})
			}
			wrong[j] = true
		}
	}
	return r
}

// relevant returns the commits that change a state, checking that each
// can be replayed.
func (r *Report) relevant(start *State, commits []testbed.Write) ([]testbed.Write, error) {
	probe := start.Clone()
	var out []testbed.Write
	for i, w := range commits {
		if err := probe.Apply(w); err != nil {
			return nil, fmt.Errorf("write %d: %w", i, err)
		}
		if !decides(w) {
			r.Ignored++
			continue
		}
		out = append(out, w)
	}
	r.Writes = len(out)
	return out, nil
}

// decides says whether a write is to something a State holds.
func decides(w testbed.Write) bool {
	resource, _, _ := strings.Cut(w.Resource, "/")
	return (w.APIGroup == "" && resource == "namespaces") || holds(w.APIGroup, resource)
}

// judge evaluates the probes at the start and at the end and returns the
// connections to judge, with their verdict.
func (r *Report) judge(c *compiler, start, final *State, probes *Probes) ([]Conn, []Verdict) {
	first, last := c.index(start), c.index(final)
	var judged []Conn
	var want []Verdict
	for _, conn := range probes.Conns {
		if !exists(start, conn) || !exists(final, conn) {
			r.Absent++
			continue
		}
		a, err := first.Evaluate(conn)
		if err != nil {
			r.addError(fmt.Errorf("at the start: %w", err))
			continue
		}
		b, err := last.Evaluate(conn)
		if err != nil {
			r.addError(fmt.Errorf("at the end: %w", err))
			continue
		}
		if a.Verdict != b.Verdict {
			r.Changed++
			continue
		}
		judged = append(judged, conn)
		want = append(want, a.Verdict)
	}
	r.Conns = len(judged)
	return judged, want
}

// exists says whether both ends of a connection exist in a state: a
// pod's namespace must.
func exists(s *State, c Conn) bool {
	for _, ep := range []*Endpoint{c.Src, c.Dst} {
		if ep.Pod != nil {
			if _, ok := s.Namespaces[ep.Pod.Namespace]; !ok {
				return false
			}
		}
	}
	return true
}
