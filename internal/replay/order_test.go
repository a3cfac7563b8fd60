package replay

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// event is one audit event of a synthetic log, in the API server's
// format (audit.k8s.io/v1, stage ResponseComplete).
type event struct {
	verb, group, resource, sub, namespace, name string
	code                                        int
	// rv is the stored object's resourceVersion; "" answers with a
	// Status (a delete).
	rv string
	// received and done are milliseconds after t0.
	received, done int
	deleting       bool     // the object carries a deletionTimestamp
	finalizers     []string // spec.finalizers of a namespace
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (e event) line() string {
	version := "v1"
	kind := "GlobalNetworkPolicy"
	if e.group == "" {
		kind = "Namespace"
	}
	ev := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "stage": "ResponseComplete",
		"verb": e.verb, "user": map[string]any{"username": "writer"},
		"objectRef":                map[string]any{"apiGroup": e.group, "apiVersion": version, "resource": e.resource, "subresource": e.sub, "namespace": e.namespace, "name": e.name},
		"responseStatus":           map[string]any{"code": e.code},
		"requestReceivedTimestamp": t0.Add(time.Duration(e.received) * time.Millisecond).Format(time.RFC3339Nano),
		"stageTimestamp":           t0.Add(time.Duration(e.done) * time.Millisecond).Format(time.RFC3339Nano),
	}
	if e.rv == "" {
		ev["responseObject"] = map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"}
	} else {
		meta := map[string]any{"name": e.name, "resourceVersion": e.rv}
		if e.deleting {
			meta["deletionTimestamp"] = t0.Format(time.RFC3339)
		}
		obj := map[string]any{"kind": kind, "apiVersion": "v1", "metadata": meta}
		if kind == "Namespace" {
			fin := []any{}
			for _, f := range e.finalizers {
				fin = append(fin, f)
			}
			obj["spec"] = map[string]any{"finalizers": fin}
		}
		ev["responseObject"] = obj
	}
	data, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// readLog parses synthetic audit events as the test bed reads its log.
func readLog(t *testing.T, events ...event) []testbed.Write {
	t.Helper()
	var lines []string
	for _, e := range events {
		lines = append(lines, e.line())
	}
	writes, err := testbed.ReadWrites(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return writes
}

func names(writes []testbed.Write) []string {
	var out []string
	for _, w := range writes {
		out = append(out, w.Verb+" "+w.Name)
	}
	return out
}

func gnp(verb, name, rv string, received, done int) event {
	return event{verb: verb, group: groupCalicoV1, resource: "globalnetworkpolicies", name: name, code: 200, rv: rv, received: received, done: done}
}

func TestOrderByResourceVersion(t *testing.T) {
	// Listed out of order; versions compare as numbers (9 < 10 < 100).
	writes := readLog(t, gnp("update", "c", "100", 50, 51), gnp("create", "a", "9", 1, 2), gnp("patch", "b", "10", 3, 4))
	c, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(c.Writes), []string{"create a", "patch b", "update c"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestOrderLeavesOutFailedWrites(t *testing.T) {
	conflict := gnp("update", "x", "12", 5, 6)
	conflict.code = 409
	unavailable := gnp("delete", "y", "", 7, 8)
	unavailable.code = 503
	writes := readLog(t, gnp("create", "a", "11", 1, 2), conflict, unavailable)
	if got, want := names(writes), []string{"create a"}; !slices.Equal(got, want) {
		t.Errorf("the log's writes %v, want %v: an error answer commits nothing", got, want)
	}
	// Writes built otherwise are checked again.
	writes = append(writes, testbed.Write{Verb: "update", Name: "z", Code: 422})
	c, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed != 1 || !slices.Equal(names(c.Writes), []string{"create a"}) {
		t.Errorf("Order kept %v (failed %d)", names(c.Writes), c.Failed)
	}
}

// A delete answered with a Status goes after what completed before it
// was received and before what was received after it completed; a write
// it overlapped (whose completion the API server stamped after the
// delete arrived) stays before it when it was received first.
func TestOrderPlacesDeletes(t *testing.T) {
	writes := readLog(t,
		gnp("delete", "first", "", 0, 1),
		gnp("create", "a", "20", 2, 10),
		gnp("delete", "a", "", 5, 12), // received before a's completion was stamped
		gnp("create", "b", "21", 13, 14),
		gnp("delete", "b", "", 15, 16),
		gnp("create", "c", "25", 17, 18),
		gnp("delete", "last", "", 30, 31),
	)
	c, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"delete first", "create a", "delete a", "create b", "delete b", "create c", "delete last"}
	if got := names(c.Writes); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// An update that changed nothing answers with the version it left in
// place; it is no commit.
func TestOrderDropsNoOps(t *testing.T) {
	writes := readLog(t,
		gnp("patch", "a", "30", 1, 2),
		gnp("patch", "b", "31", 3, 4),
		gnp("delete", "c", "", 5, 6),
		gnp("patch", "a", "30", 7, 8), // nothing to change: a is still at 30
	)
	c, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"patch a", "patch b", "delete c"}; !slices.Equal(names(c.Writes), want) || c.NoOps != 1 {
		t.Errorf("order %v (no-ops %d), want %v and 1 no-op", names(c.Writes), c.NoOps, want)
	}
}

// A namespace's delete answers with the namespace being deleted (a new
// version, still there, with its finalizer); the finalize that empties
// the finalizers removes it and answers with the version it had.
func TestOrderNamespaceDeletion(t *testing.T) {
	ns := func(verb, sub, rv string, received, done int, deleting bool, fin ...string) event {
		return event{verb: verb, resource: "namespaces", sub: sub, namespace: "x", name: "x", code: 200, rv: rv,
			received: received, done: done, deleting: deleting, finalizers: fin}
	}
	writes := readLog(t,
		ns("create", "", "40", 1, 2, false, "kubernetes"),
		ns("delete", "", "41", 3, 4, true, "kubernetes"),
		gnp("create", "p", "42", 5, 6),
		ns("update", "finalize", "41", 7, 8, true),
		gnp("create", "q", "44", 9, 10),
	)
	c, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"create x", "delete x", "create p", "update x", "create q"}; !slices.Equal(names(c.Writes), want) || c.NoOps != 0 {
		t.Fatalf("order %v (no-ops %d), want %v", names(c.Writes), c.NoOps, want)
	}
	s := NewState()
	for i, w := range c.Writes[:2] {
		if err := s.Apply(w); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Namespaces["x"]; !ok {
			t.Errorf("after write %d the namespace is gone; it is only being deleted", i)
		}
	}
	if err := s.Apply(c.Writes[3]); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Namespaces["x"]; ok {
		t.Error("the finalize left the namespace in place")
	}
}

// Random logs of clients that each write one request after another,
// while etcd commits every write at a moment between its reception and
// its completion: Order must give the commits in etcd's order, put each
// client's writes in the order it sent them, and place every delete
// after what completed before it and before what began after it.
func TestOrderSimulated(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		type sim struct {
			e      event
			client int
			seq    int
			commit int
		}
		var all []sim
		for client := range 3 {
			now := r.IntN(5)
			for seq := range 15 {
				received := now + r.IntN(3)
				commit := received + r.IntN(4)
				done := commit + r.IntN(4) // the completion is stamped late
				verb := []string{"create", "patch", "delete"}[r.IntN(3)]
				e := gnp(verb, fmt.Sprintf("c%d-%d", client, seq), "", received*10, done*10)
				all = append(all, sim{e: e, client: client, seq: seq, commit: commit*10 + client})
				now = done - r.IntN(3) // the next request may be sent before the stamp
				if now < commit+1 {
					now = commit + 1
				}
			}
		}
		// etcd's revisions follow the commit moments.
		byCommit := slices.Clone(all)
		slices.SortFunc(byCommit, func(a, b sim) int { return a.commit - b.commit })
		rank := map[string]int{}
		for i, s := range byCommit {
			rank[s.e.name] = i
		}
		var events []event
		for _, s := range all {
			if s.e.verb != "delete" {
				s.e.rv = fmt.Sprint(100 + rank[s.e.name])
			}
			events = append(events, s.e)
		}
		r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		c, err := Order(readLog(t, events...))
		if err != nil {
			t.Fatal(err)
		}
		pos := map[string]int{}
		for i, w := range c.Writes {
			pos[w.Name] = i
		}
		for _, a := range all {
			for _, b := range all {
				switch {
				case a.e.verb != "delete" && b.e.verb != "delete" && rank[a.e.name] < rank[b.e.name] && pos[a.e.name] > pos[b.e.name]:
					t.Fatalf("seed %d: %s committed before %s, ordered after it", seed, a.e.name, b.e.name)
				case a.client == b.client && a.seq < b.seq && pos[a.e.name] > pos[b.e.name]:
					t.Fatalf("seed %d: client %d sent %s before %s, ordered after it", seed, a.client, a.e.name, b.e.name)
				case b.e.verb == "delete" && a.e.done < b.e.received && pos[a.e.name] > pos[b.e.name]:
					t.Fatalf("seed %d: %s completed before %s was received, ordered after it", seed, a.e.name, b.e.name)
				}
			}
		}
	}
}
