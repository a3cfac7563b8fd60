package flows

import (
	"fmt"
	"testing"
	"time"
)

func TestStoreCountsEachEntryOnce(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now})
	f := pendingDeny("data", "shop", 5432, t0)
	clock.Add(30 * time.Second)
	if !s.Add(f) {
		t.Fatal("the first copy was refused")
	}
	if s.Add(f) {
		t.Error("the second copy was counted")
	}
	next := pendingDeny("data", "shop", 5432, t0.Add(Interval))
	s.Add(next)
	key, _ := Classify(f)
	if got := s.Pending(); len(got) != 1 || got[0].Key != key || got[0].Flows != 2 || got[0].Connections != 4 {
		t.Errorf("pending %+v, want 2 flows of 2 connections each", got)
	}
	stats, keys, recent, last := s.Stats()
	if stats.Flows != 3 || stats.Duplicates != 1 || stats.PendingDenies != 2 || keys != 1 || recent != 1 || !last.Equal(clock.Now()) {
		t.Errorf("stats %+v, %d keys, %d recent, last %v", stats, keys, recent, last)
	}
}

func TestStoreResumesBeforeTheNewestFlow(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now, Window: time.Hour})
	if _, ok := s.ResumeFrom(); ok {
		t.Error("a resume point before any flow")
	}
	s.Add(allowed("data", "shop", 80, t0.Add(-time.Minute)))
	s.Add(allowed("data", "shop", 81, t0.Add(-2*time.Minute)))
	if from, ok := s.ResumeFrom(); !ok || from != t0.Add(-time.Minute-resumeOverlap).Unix() {
		t.Errorf("resume from %v, want the newest start less %v", time.Unix(from, 0).UTC(), resumeOverlap)
	}
	clock.Add(3 * time.Hour)
	if from, _ := s.ResumeFrom(); from != clock.Now().Add(-time.Hour).Unix() {
		t.Errorf("resume from %v, want no earlier than the window", time.Unix(from, 0).UTC())
	}
}

// Entries a resumed stream may send again are recognised; the IDs of
// older ones are forgotten, so that memory stays bounded.
func TestStoreKeepsIDsForTheOverlapOnly(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now})
	for i := range 240 { // an hour of intervals
		clock.Set(t0.Add(time.Duration(i) * Interval))
		s.Add(allowed("data", "shop", 80, t0.Add(time.Duration(i)*Interval)))
	}
	from, _ := s.ResumeFrom()
	for id := range s.ids {
		if id.start < from-int64(Interval/time.Second) {
			t.Errorf("the ID of an entry from %v is still kept, before the resume point %v", time.Unix(id.start, 0).UTC(), time.Unix(from, 0).UTC())
		}
	}
	if len(s.ids) > int(resumeOverlap/Interval)+2 {
		t.Errorf("%d IDs kept", len(s.ids))
	}
	// What a stream resumed at from sends again is not counted again.
	for start := from; start <= t0.Add(239*Interval).Unix(); start += int64(Interval / time.Second) {
		if s.Add(allowed("data", "shop", 80, time.Unix(start, 0).UTC())) {
			t.Errorf("the entry of %v was counted twice", time.Unix(start, 0).UTC())
		}
	}
}

func TestStoreBoundsRecentFlows(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now, MaxFlows: 8})
	for port := range 20 {
		s.Add(allowed("data", "shop", 1000+port, t0.Add(time.Duration(port)*time.Second)))
	}
	recent := s.Recent()
	if len(recent) > 8 {
		t.Fatalf("%d recent flows kept, bound 8", len(recent))
	}
	for _, f := range recent {
		if f.Port < 1012 {
			t.Errorf("port %d kept: the oldest go first", f.Port)
		}
	}
}

func TestStoreKeepsTheLatestObservationOfAFlow(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now})
	late := allowed("data", "shop", 80, t0.Add(time.Minute))
	late.Connections = 7
	s.Add(late)
	s.Add(allowed("data", "shop", 80, t0)) // an older interval arriving later
	if r := s.Recent(); len(r) != 1 || r[0].Connections != 7 {
		t.Errorf("recent %+v, want the later interval", r)
	}
}

func TestStoreEvidence(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now, MaxGap: 5 * time.Minute})
	if ev := s.Evidence(); !ev.Since.IsZero() || len(ev.Denies) != 0 {
		t.Errorf("evidence before any message: %+v", ev)
	}
	s.Alive()
	clock.Add(time.Minute)
	s.Add(pendingDeny("data", "shop", 5432, t0))
	s.Add(pendingDeny("data", "shop", 5432, t0.Add(Interval)))
	ev := s.Evidence()
	if !ev.Since.Equal(t0) || len(ev.Denies) != 1 {
		t.Fatalf("evidence %+v", ev)
	}
	d := ev.Denies[0]
	if d.Flows != 2 || !d.First.Equal(t0.Add(Interval)) || !d.Last.Equal(t0.Add(2*Interval)) {
		t.Errorf("deny %+v", d)
	}
	clock.Add(10 * time.Minute)
	if ev := s.Evidence(); !ev.Since.IsZero() {
		t.Errorf("10 minutes of silence, evidence since %v", ev.Since)
	}
}

// Past MaxKeys, the record of when denies were seen forgets those seen
// before the evidence began, then folds.
func TestStoreBoundsSeenDenies(t *testing.T) {
	clock := newClock()
	s := NewStore(StoreOptions{Clock: clock.Now, MaxKeys: 3, MaxGap: time.Minute})
	s.Add(pendingDeny("data", "shop", 1, t0))
	s.Add(pendingDeny("data", "shop", 2, t0))
	clock.Add(10 * time.Minute) // the evidence breaks
	s.Add(pendingDeny("data", "shop", 3, t0.Add(10*time.Minute)))
	s.Add(pendingDeny("data", "shop", 4, t0.Add(10*time.Minute)))
	s.Add(pendingDeny("data", "shop", 5, t0.Add(10*time.Minute)))
	s.Add(pendingDeny("data", "shop", 6, t0.Add(10*time.Minute)))
	ports := map[string]bool{}
	for _, d := range s.Evidence().Denies {
		ports[fmt.Sprint(d.Key.Port, d.Key.Folded)] = true
	}
	want := map[string]bool{"3 false": true, "4 false": true, "5 false": true, "0 true": true}
	if fmt.Sprint(ports) != fmt.Sprint(want) {
		t.Errorf("denies kept %v, want %v", ports, want)
	}
}
