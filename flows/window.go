package flows

import (
	"math"
	"time"
)

// Interval is Goldmane's aggregation interval: every flow covers one.
const Interval = 15 * time.Second

// windowSteps is how many buckets a window is cut into: the window slides
// in steps of a 96th of its length (15 minutes for 24 hours), which keeps
// memory at about 96 entries per key however long the window.
const windowSteps = 96

// Counts are what one key was seen doing.
type Counts struct {
	// Flows counts flow log entries: one per side and 15-second interval.
	Flows int64
	// Connections counts the connections started.
	Connections int64
	// Last is the end of the latest flow counted.
	Last time.Time
}

func (c *Counts) add(f Flow) {
	c.Flows++
	c.Connections += f.Connections
	if f.End.After(c.Last) {
		c.Last = f.End
	}
}

// Window counts flows by key over a sliding time range, in buckets by the
// flows' start time. It holds at most maxKeys keys: past that, new keys
// are counted under their namespace's folded key (Key.Folded). Not safe
// for concurrent use; Store guards it.
type Window struct {
	length, step time.Duration
	maxKeys      int
	buckets      map[int64]map[Key]Counts // by bucket start, Unix seconds
	totals       map[Key]Counts
	// oldest is the start of the oldest bucket held, so that Advance
	// has nothing to do most of the time.
	oldest int64
}

// NewWindow returns a window of the given length (at least one
// interval) holding at most maxKeys keys (0: no limit).
func NewWindow(length time.Duration, maxKeys int) *Window {
	if length < Interval {
		length = Interval
	}
	step := (length/windowSteps + Interval - 1) / Interval * Interval
	if step < Interval {
		step = Interval
	}
	return &Window{length: length, step: step, maxKeys: maxKeys,
		buckets: map[int64]map[Key]Counts{}, totals: map[Key]Counts{}}
}

// Length is the window's length; Step how far it slides at a time.
func (w *Window) Length() time.Duration { return w.length }
func (w *Window) Step() time.Duration   { return w.step }

// Add counts a flow under key, unless it started before the window that
// ends at now. It reports whether the flow was counted.
func (w *Window) Add(now time.Time, key Key, f Flow) bool {
	w.Advance(now)
	start := w.bucketOf(f.Start)
	if start < w.bucketOf(now.Add(-w.length)) {
		return false
	}
	if _, known := w.totals[key]; !known && w.maxKeys > 0 && len(w.totals) >= w.maxKeys {
		key = key.fold()
	}
	b := w.buckets[start]
	if b == nil {
		b = map[Key]Counts{}
		w.buckets[start] = b
		if len(w.buckets) == 1 || start < w.oldest {
			w.oldest = start
		}
	}
	c := b[key]
	c.add(f)
	b[key] = c
	t := w.totals[key]
	t.add(f)
	w.totals[key] = t
	return true
}

// Advance drops the buckets that have left the window ending at now.
func (w *Window) Advance(now time.Time) {
	limit := w.bucketOf(now.Add(-w.length))
	if len(w.buckets) == 0 || w.oldest >= limit {
		return
	}
	w.oldest = math.MaxInt64
	for start, b := range w.buckets {
		if start >= limit {
			w.oldest = min(w.oldest, start)
			continue
		}
		for k, c := range b {
			t := w.totals[k]
			t.Flows -= c.Flows
			t.Connections -= c.Connections
			if t.Flows <= 0 {
				delete(w.totals, k)
			} else {
				w.totals[k] = t
			}
		}
		delete(w.buckets, start)
	}
}

// Totals returns the counts of every key in the window ending at now.
func (w *Window) Totals(now time.Time) map[Key]Counts {
	w.Advance(now)
	out := make(map[Key]Counts, len(w.totals))
	for k, c := range w.totals {
		out[k] = c
	}
	return out
}

// Each calls fn for every key in the window ending at now.
func (w *Window) Each(now time.Time, fn func(Key, Counts)) {
	w.Advance(now)
	for k, c := range w.totals {
		fn(k, c)
	}
}

// Len is the number of keys in the window.
func (w *Window) Len() int { return len(w.totals) }

func (w *Window) bucketOf(t time.Time) int64 {
	s := int64(w.step / time.Second)
	u := t.Unix()
	if u < 0 {
		return (u - s + 1) / s * s
	}
	return u / s * s
}

// fold coarsens a key to its namespace and direction, for keys past the
// window's limit: their counts still show, and still mark the namespace
// as not quiet.
func (k Key) fold() Key {
	return Key{Cause: k.Cause, Direction: k.Direction, Namespace: k.Namespace, Folded: true}
}
