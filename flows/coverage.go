package flows

import "time"

// Coverage tracks whether flow evidence is unbroken: it is, from the
// first message Goldmane sent, for as long as no two messages are more
// than maxGap apart and the last one is at most maxGap old. A gap breaks
// it even if a later backfill may have filled it, because nothing proves
// that Goldmane kept (or ever had) the flows of the gap: it keeps them in
// memory only, and a Goldmane that restarted has lost them.
//
// Times are those at which messages arrived (calico-pni's clock), not the
// flows' own times, so that a backfill of old flows never extends the
// evidence backwards.
type Coverage struct {
	maxGap      time.Duration
	since, last time.Time
}

// NewCoverage returns coverage that breaks after maxGap without messages.
func NewCoverage(maxGap time.Duration) Coverage { return Coverage{maxGap: maxGap} }

// Saw records a message that arrived at t.
func (c *Coverage) Saw(t time.Time) {
	if c.last.IsZero() || t.Sub(c.last) > c.maxGap {
		c.since = t
	}
	if t.After(c.last) {
		c.last = t
	}
}

// Since returns when the unbroken evidence that holds at now began, or
// false when there is none now.
func (c Coverage) Since(now time.Time) (time.Time, bool) {
	if c.last.IsZero() || now.Sub(c.last) > c.maxGap {
		return time.Time{}, false
	}
	return c.since, true
}

// Last is when the last message arrived (zero: none yet).
func (c Coverage) Last() time.Time { return c.last }
