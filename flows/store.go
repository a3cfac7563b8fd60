package flows

import (
	"slices"
	"sync"
	"time"
)

// StoreOptions bound a Store. Zero values take the defaults.
type StoreOptions struct {
	// Window is how far back pending denies are counted (default 24h).
	Window time.Duration
	// MaxGap is the longest silence from Goldmane that still counts as
	// unbroken evidence (default 5m; see Coverage).
	MaxGap time.Duration
	// MaxKeys bounds the pending-deny keys kept, in the window and in the
	// record of when each was last seen (default 20,000 each).
	MaxKeys int
	// MaxFlows bounds the recent observations kept (default 20,000).
	MaxFlows int
	// Clock is the time (default time.Now).
	Clock func() time.Time
}

// Defaults of StoreOptions.
const (
	DefaultWindow   = 24 * time.Hour
	DefaultMaxGap   = 5 * time.Minute
	DefaultMaxKeys  = 20_000
	DefaultMaxFlows = 20_000
)

// resumeOverlap is how far before the newest flow seen a resumed stream
// starts: Goldmane streams an interval some 30 seconds after it began, and
// a flow may arrive after later ones (its bucket was backfilled). Flows in
// the overlap that were seen before are recognised and not counted again.
const resumeOverlap = 2 * time.Minute

// Store keeps the flow evidence in bounded memory. The Client writes to it;
// any number of readers query it at the same time. Every method returns
// after a short critical section: nothing in it waits on the network.
type Store struct {
	mu      sync.Mutex
	opts    StoreOptions
	window  *Window
	seen    map[Key]Seen
	recent  map[uint64]Flow
	ids     map[flowID]struct{}
	newest  int64 // start of the newest flow seen, Unix seconds
	cover   Coverage
	counter StoreStats
}

// Seen is when a pending deny was seen, over the Store's lifetime.
type Seen struct {
	Key Key
	// First and Last are the end times of the first and last flow.
	First, Last time.Time
	Flows       int64
}

// StoreStats count what the Store was given.
type StoreStats struct {
	// Flows received, Duplicates among them (not counted again), Old ones
	// (before the window), and PendingDenies counted.
	Flows, Duplicates, Old, PendingDenies int64
	// Folded counts pending denies counted under a folded key because
	// MaxKeys was reached.
	Folded int64
}

// NewStore returns an empty Store.
func NewStore(opts StoreOptions) *Store {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxGap <= 0 {
		opts.MaxGap = DefaultMaxGap
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = DefaultMaxFlows
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Store{
		opts:   opts,
		window: NewWindow(opts.Window, opts.MaxKeys),
		seen:   map[Key]Seen{},
		recent: map[uint64]Flow{},
		ids:    map[flowID]struct{}{},
		cover:  NewCoverage(opts.MaxGap),
	}
}

// Add records a flow that just arrived. It reports false for a flow seen
// before (same key and interval), which changes nothing but the evidence
// that Goldmane is answering.
func (s *Store) Add(f Flow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock()
	s.cover.Saw(now)
	s.counter.Flows++
	key := flowKey(f)
	id := flowID{key, f.Start.Unix()}
	if _, dup := s.ids[id]; dup {
		s.counter.Duplicates++
		return false
	}
	s.remember(id)
	if prev, ok := s.recent[key]; !ok || !f.Start.Before(prev.Start) {
		s.recent[key] = f
		s.boundRecent(now)
	}
	if k, ok := Classify(f); ok {
		s.counter.PendingDenies++
		if !s.window.Add(now, k, f) {
			s.counter.Old++
		}
		s.see(k, f)
	}
	return true
}

// Alive records a sign of life from Goldmane that carried no flow.
func (s *Store) Alive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cover.Saw(s.opts.Clock())
}

// remember keeps the ID for as long as a resumed stream can send it again.
func (s *Store) remember(id flowID) {
	s.ids[id] = struct{}{}
	if id.start <= s.newest {
		return
	}
	s.newest = id.start
	horizon := s.newest - int64(resumeOverlap/time.Second) - int64(Interval/time.Second)
	for old := range s.ids {
		if old.start < horizon {
			delete(s.ids, old)
		}
	}
}

func (s *Store) see(k Key, f Flow) {
	r, ok := s.seen[k]
	if !ok && len(s.seen) >= s.opts.MaxKeys {
		s.pruneSeen()
		if len(s.seen) >= s.opts.MaxKeys {
			k = k.fold()
			s.counter.Folded++
		}
		r, ok = s.seen[k]
	}
	if !ok {
		r = Seen{Key: k, First: f.End}
	}
	r.Flows++
	if f.End.After(r.Last) {
		r.Last = f.End
	}
	if f.End.Before(r.First) {
		r.First = f.End
	}
	s.seen[k] = r
}

// pruneSeen forgets denies last seen before the current evidence began:
// the gate counts quiet time from the later of the two, so they cannot
// change its answer.
func (s *Store) pruneSeen() {
	since, ok := s.cover.Since(s.opts.Clock())
	if !ok {
		return
	}
	for k, r := range s.seen {
		if r.Last.Before(since) {
			delete(s.seen, k)
		}
	}
}

// boundRecent drops observations that left the window, then the oldest
// eighth when the bound is still exceeded.
func (s *Store) boundRecent(now time.Time) {
	if len(s.recent) <= s.opts.MaxFlows {
		return
	}
	cut := now.Add(-s.opts.Window)
	for k, f := range s.recent {
		if f.End.Before(cut) {
			delete(s.recent, k)
		}
	}
	if len(s.recent) <= s.opts.MaxFlows {
		return
	}
	type entry struct {
		key uint64
		end time.Time
	}
	entries := make([]entry, 0, len(s.recent))
	for k, f := range s.recent {
		entries = append(entries, entry{k, f.End})
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.end.Compare(b.end) })
	for _, e := range entries[:len(entries)-s.opts.MaxFlows*7/8] {
		delete(s.recent, e.key)
	}
}

// ResumeFrom returns the start time (Unix seconds) a new stream should ask
// for: a little before the newest flow seen, so that nothing in between is
// missed, but not before the window; or false before any flow was seen.
func (s *Store) ResumeFrom() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.newest == 0 {
		return 0, false
	}
	from := s.newest - int64(resumeOverlap/time.Second)
	if floor := s.opts.Clock().Add(-s.opts.Window).Unix(); from < floor {
		from = floor
	}
	return from, true
}

// KeyCounts is a pending deny and its counts in the window.
type KeyCounts struct {
	Key Key
	Counts
}

// Pending returns the pending denies counted in the window ending now, in
// no particular order (Summarize sorts).
func (s *Store) Pending() []KeyCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KeyCounts, 0, s.window.Len())
	s.window.Each(s.opts.Clock(), func(k Key, c Counts) { out = append(out, KeyCounts{k, c}) })
	return out
}

// Evidence returns what the promotion gate decides on.
func (s *Store) Evidence() Evidence {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := Evidence{Denies: make([]Seen, 0, len(s.seen))}
	ev.Since, _ = s.cover.Since(s.opts.Clock())
	for _, r := range s.seen {
		ev.Denies = append(ev.Denies, r)
	}
	return ev
}

// EvidenceSince is Evidence().Since without the copy of the denies: when
// the unbroken evidence began, zero when there is none now.
func (s *Store) EvidenceSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, _ := s.cover.Since(s.opts.Clock())
	return since
}

// Recent returns the latest observation of every flow seen in the window,
// for comparing predictions with what Felix did (Compare).
func (s *Store) Recent() []Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.opts.Clock().Add(-s.opts.Window)
	out := make([]Flow, 0, len(s.recent))
	for _, f := range s.recent {
		if !f.End.Before(cut) {
			out = append(out, f)
		}
	}
	return out
}

// Stats returns the Store's counters, how many pending-deny keys and
// observations it holds, and the time of the last message from Goldmane.
func (s *Store) Stats() (StoreStats, int, int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter, s.window.Len(), len(s.recent), s.cover.Last()
}

// WindowLength is the length of the window Pending counts over.
func (s *Store) WindowLength() time.Duration { return s.opts.Window }
