package flows

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 2 * time.Minute, Jitter: 0.2}
	tests := []struct {
		attempt int
		random  float64
		want    time.Duration
	}{
		{0, 0.5, time.Second},
		{1, 0.5, 2 * time.Second},
		{3, 0.5, 8 * time.Second},
		{7, 0.5, 2 * time.Minute},
		{100, 0.5, 2 * time.Minute},
		{0, 0, 800 * time.Millisecond},
		{7, 0.75, 2*time.Minute + 12*time.Second},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt, tt.random); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.random, got, tt.want)
		}
	}
}

func TestStatusLine(t *testing.T) {
	at := t0
	tests := []struct {
		status Status
		want   string
	}{
		{Status{Address: "g:7443", State: StateOff}, "flow evidence unavailable: the flow-log client is not running (flows.enabled: false)"},
		{Status{Address: "g:7443", State: StateConnecting}, "flow evidence unavailable: connecting to g:7443"},
		{Status{Address: "g:7443", State: StateConnected}, "flow evidence unavailable: connected to g:7443, no flow received yet"},
		{Status{Address: "g:7443", State: StateUnavailable, LastError: "Goldmane at g:7443: Unavailable: refused", RetryAt: at},
			"flow evidence unavailable: Goldmane at g:7443: Unavailable: refused (next attempt at 2026-03-02T10:00:00Z)"},
		{Status{Address: "g:7443", State: StateStreaming, LastMessageAt: at},
			"flow evidence unavailable: no flow from g:7443 since 2026-03-02T10:00:00Z"},
		{Status{Address: "g:7443", State: StateStreaming, EvidenceSince: at, LastFlowEnd: at.Add(time.Hour)},
			"flow evidence from g:7443 since 2026-03-02T10:00:00Z (newest flow 2026-03-02T11:00:00Z)"},
		{Status{Address: "g:7443", State: StateUnavailable, EvidenceSince: at, LastError: "Goldmane at g:7443 ended the stream"},
			"flow evidence from g:7443 since 2026-03-02T10:00:00Z; reconnecting: Goldmane at g:7443 ended the stream"},
	}
	for _, tt := range tests {
		if got := tt.status.Line(); got != tt.want {
			t.Errorf("Line() = %q\nwant      %q", got, tt.want)
		}
	}
}
