package flows

import (
	"testing"
	"time"
)

func TestWindowSlides(t *testing.T) {
	w := NewWindow(time.Hour, 0)
	if w.Step() != 45*time.Second {
		t.Fatalf("step %v: a 96th of an hour rounded up to whole intervals is 45s", w.Step())
	}
	early := pendingDeny("data", "shop", 5432, t0)
	late := pendingDeny("data", "shop", 5432, t0.Add(30*time.Minute))
	key, _ := Classify(early)
	w.Add(t0.Add(time.Minute), key, early)
	w.Add(t0.Add(31*time.Minute), key, late)

	steps := []struct {
		at                 time.Duration
		flows, connections int64
		last               time.Time
	}{
		{31 * time.Minute, 2, 4, late.End},
		{60 * time.Minute, 2, 4, late.End}, // t0's bucket is still inside
		{61 * time.Minute, 1, 2, late.End}, // t0's bucket has left
		{91 * time.Minute, 0, 0, time.Time{}},
	}
	for _, s := range steps {
		got := w.Totals(t0.Add(s.at))[key]
		if got.Flows != s.flows || got.Connections != s.connections || !got.Last.Equal(s.last) {
			t.Errorf("at t0+%v: %+v, want %d flows, %d connections, last %v", s.at, got, s.flows, s.connections, s.last)
		}
	}
	if w.Len() != 0 || len(w.buckets) != 0 {
		t.Errorf("an empty window still holds %d keys in %d buckets", w.Len(), len(w.buckets))
	}
}

func TestWindowRefusesFlowsBeforeIt(t *testing.T) {
	w := NewWindow(time.Hour, 0)
	f := pendingDeny("data", "shop", 5432, t0)
	key, _ := Classify(f)
	if w.Add(t0.Add(2*time.Hour), key, f) {
		t.Error("a flow from before the window was counted")
	}
	if w.Len() != 0 {
		t.Errorf("%d keys", w.Len())
	}
}

func TestWindowFoldsKeysPastItsBound(t *testing.T) {
	w := NewWindow(time.Hour, 2)
	for i, port := range []int{80, 81, 82, 83} {
		f := pendingDeny("data", "shop", port, t0.Add(time.Duration(i)*Interval))
		key, _ := Classify(f)
		w.Add(t0.Add(time.Minute), key, f)
	}
	totals := w.Totals(t0.Add(time.Minute))
	folded := Key{Cause: CauseWall, Direction: Ingress, Namespace: "shop", Folded: true}
	if len(totals) != 3 || totals[folded].Flows != 2 {
		t.Errorf("totals %+v: want ports 80 and 81, and 82 and 83 folded", totals)
	}
}

func TestCoverage(t *testing.T) {
	c := NewCoverage(5 * time.Minute)
	if _, ok := c.Since(t0); ok {
		t.Error("evidence before any message")
	}
	c.Saw(t0)
	c.Saw(t0.Add(4 * time.Minute))
	c.Saw(t0.Add(8 * time.Minute))
	if since, ok := c.Since(t0.Add(12 * time.Minute)); !ok || !since.Equal(t0) {
		t.Errorf("gaps of 4 minutes broke the evidence: %v %v", since, ok)
	}
	if _, ok := c.Since(t0.Add(14 * time.Minute)); ok {
		t.Error("6 minutes of silence still count as evidence")
	}
	c.Saw(t0.Add(15 * time.Minute))
	if since, ok := c.Since(t0.Add(15 * time.Minute)); !ok || !since.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("after the gap the evidence starts again: %v %v", since, ok)
	}
}
