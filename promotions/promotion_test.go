package promotions

import (
	"testing"
	"time"
)

func TestQuiet(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7*24*time.Hour + 5*time.Hour:  "7 days",
		2 * 24 * time.Hour:            "2 days",
		24*time.Hour + 10*time.Minute: "1 day",
		30 * time.Hour:                "30h0m",
		3*time.Hour + 20*time.Minute:  "3h20m",
		90 * time.Second:              "2m",
		4 * time.Second:               "4s",
	} {
		if got := Quiet(d); got != want {
			t.Errorf("Quiet(%v) = %q, want %q", d, got, want)
		}
	}
}
