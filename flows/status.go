package flows

import (
	"fmt"
	"time"
)

// State is where the Client is with Goldmane.
type State string

// The states.
const (
	// StateOff: the Client is not running.
	StateOff State = "off"
	// StateConnecting: an attempt is under way.
	StateConnecting State = "connecting"
	// StateConnected: the stream is open and no flow has come yet.
	StateConnected State = "connected"
	// StateStreaming: flows are arriving.
	StateStreaming State = "streaming"
	// StateUnavailable: the last attempt failed; another follows at
	// RetryAt.
	StateUnavailable State = "unavailable"
)

// Status is what the Client reports for a status line and metrics.
type Status struct {
	Address string
	State   State
	// Since is when State was entered.
	Since time.Time
	// LastError is the last failure, LastErrorAt when it happened, and
	// RetryAt when the next attempt starts (in StateUnavailable).
	LastError   string
	LastErrorAt time.Time
	RetryAt     time.Time
	// LastMessageAt is when the last message arrived; LastFlowEnd the end
	// of the newest flow received (Goldmane's time).
	LastMessageAt time.Time
	LastFlowEnd   time.Time
	// Received counts flows, Duplicates those seen before; Attempts the
	// connection attempts.
	Received, Duplicates int64
	Attempts             int64
	// EvidenceSince is when the unbroken evidence began; zero: none now.
	EvidenceSince time.Time
}

// Available reports whether there is flow evidence now.
func (s Status) Available() bool { return !s.EvidenceSince.IsZero() }

// Line says in one line whether there is flow evidence, and why not:
// "flow evidence from goldmane.calico-system.svc:7443 since ..." or
// "flow evidence unavailable: <why>".
func (s Status) Line() string {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if s.Available() {
		line := fmt.Sprintf("flow evidence from %s since %s", s.Address, stamp(s.EvidenceSince))
		if !s.LastFlowEnd.IsZero() {
			line += fmt.Sprintf(" (newest flow %s)", stamp(s.LastFlowEnd))
		}
		if s.State == StateUnavailable {
			line += fmt.Sprintf("; reconnecting: %s", s.LastError)
		}
		return line
	}
	why := ""
	switch s.State {
	case StateOff:
		why = "the flow-log client is not running (flows.enabled: false)"
	case StateConnecting:
		why = "connecting to " + s.Address
		if s.LastError != "" {
			why += "; last error: " + s.LastError
		}
	case StateConnected:
		why = "connected to " + s.Address + ", no flow received yet"
	case StateStreaming:
		why = fmt.Sprintf("no flow from %s since %s", s.Address, stamp(s.LastMessageAt))
	case StateUnavailable:
		why = fmt.Sprintf("%s (next attempt at %s)", s.LastError, stamp(s.RetryAt))
	}
	return "flow evidence unavailable: " + why
}
