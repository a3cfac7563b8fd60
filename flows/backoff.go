package flows

import "time"

// Backoff spaces reconnection attempts: Initial, doubled after each failed
// attempt up to Max, each spread by ±Jitter (a fraction) so that many
// replicas do not reconnect in step after a Goldmane restart.
type Backoff struct {
	Initial, Max time.Duration
	Jitter       float64
}

// DefaultBackoff is 1s, 2s, 4s, ... up to 2 minutes, ±20%.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 2 * time.Minute, Jitter: 0.2}

// Delay is the wait before attempt number attempt (0 after a stream that
// delivered flows), given a random number in [0, 1).
func (b Backoff) Delay(attempt int, random float64) time.Duration {
	d := b.Initial
	for range attempt {
		if d >= b.Max/2 {
			d = b.Max
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	spread := time.Duration(float64(d) * b.Jitter * (2*random - 1))
	return max(d+spread, 0)
}
