package promotions

import (
	"encoding/json"
	"fmt"
	"time"
)

// Promotion is one project the gate enforced, as the record keeps it.
type Promotion struct {
	// Project is the project's ID (the record's key).
	Project string `json:"-"`
	// At is when the gate enforced it.
	At time.Time `json:"promotedAt"`
	// QuietSince is when its quiet time began: no unexpected pending deny
	// by calico-pni's walls from then on (flows.Readiness.QuietSince).
	QuietSince time.Time `json:"quietSince"`
	// QuietFor is projects.promote.quietFor at the time.
	QuietFor string `json:"quietFor"`
	// Accepted counts the pending denies that projects.promote.accept
	// expected and that did not hold the project back.
	Accepted int `json:"acceptedDenies,omitempty"`
	// Evidence is the flow evidence's status line at the time.
	Evidence string `json:"evidence"`
}

// Reason is the sentence the status of the project's namespaces gives:
// "promoted at 2026-03-09T10:00:00Z after 7 days without an unexpected
// pending deny (projects.promote)". It depends on the record only, so
// that it never changes while the record stays.
func (p Promotion) Reason() string {
	return fmt.Sprintf("promoted at %s after %s without an unexpected pending deny (projects.promote)",
		p.At.UTC().Format(time.RFC3339), Quiet(p.At.Sub(p.QuietSince)))
}

// Quiet says a length of quiet time in words: "7 days", "1 day", "3h20m".
func Quiet(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); {
	case days >= 2:
		return fmt.Sprintf("%d days", days)
	case days == 1 && d%(24*time.Hour) < time.Hour:
		return "1 day"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	return s[:len(s)-2] // "3h20m0s" -> "3h20m"
}

func (p Promotion) encode() (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

func decode(project, value string) (Promotion, error) {
	var p Promotion
	if err := json.Unmarshal([]byte(value), &p); err != nil {
		return p, err
	}
	if p.At.IsZero() {
		return p, fmt.Errorf("no promotedAt")
	}
	p.Project = project
	return p, nil
}
