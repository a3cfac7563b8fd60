package flows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/calico-pni/calico-pni/config"
)

// Evidence is what the promotion gate decides on (Store.Evidence).
type Evidence struct {
	// Since is when the unbroken flow evidence that holds now began
	// (Coverage); zero when there is none now.
	Since time.Time
	// Denies are the pending denies seen, with when they were last seen.
	Denies []Seen
}

// StagedProject is a project whose isolation is staged.
type StagedProject struct {
	Project string
	// Since is when its staged policies were in place; zero when that was
	// before the evidence began (or is not known to be later).
	Since time.Time
}

// Readiness is the gate's answer for one staged project.
type Readiness struct {
	Project string
	// Ready: quiet for at least promote.quietFor.
	Ready bool
	// QuietSince is when the project's quiet time began: the latest of
	// the evidence's start, the project's staging and its last unexpected
	// pending deny. Zero when there is no evidence now.
	QuietSince time.Time
	// Quiet is how long it has been quiet, ReadyAt when it passes if it
	// stays so.
	Quiet   time.Duration
	ReadyAt time.Time
	// LastDeny is the latest unexpected pending deny, if any was seen.
	LastDeny *Seen
	// Unexpected and Accepted count the distinct pending denies (keys) of
	// the project seen while the evidence held.
	Unexpected, Accepted int
	// Reason says in one sentence why the project passes or not.
	Reason string
}

// Gate decides which staged projects may be enforced: those that have
// shown no unexpected pending deny for promote.QuietFor, counted from when
// evidence for them became available (the later of Evidence.Since and
// StagedProject.Since). No evidence now means not quiet. A pending deny is
// unexpected unless an entry of promote.Accept matches it. Only denies by
// calico-pni's walls (CauseWall) count: a tenant's policy that would deny
// after the walls passed decides the same whether or not the walls are
// enforced.
func Gate(now time.Time, promote config.Promote, staged []StagedProject, ev Evidence, projectOf ProjectOf) []Readiness {
	projectOf = cached(projectOf)
	byProject := map[string][]Seen{}
	for _, d := range ev.Denies {
		if d.Key.Cause == CauseWall {
			p := projectOf(d.Key.Namespace)
			byProject[p] = append(byProject[p], d)
		}
	}
	out := make([]Readiness, 0, len(staged))
	for _, sp := range staged {
		out = append(out, readiness(now, promote, sp, ev.Since, byProject[sp.Project], projectOf))
	}
	slices.SortFunc(out, func(a, b Readiness) int { return cmp.Compare(a.Project, b.Project) })
	return out
}

func readiness(now time.Time, promote config.Promote, sp StagedProject, evidence time.Time, denies []Seen, projectOf ProjectOf) Readiness {
	r := Readiness{Project: sp.Project}
	if evidence.IsZero() {
		r.Reason = "no flow evidence now: quiet time starts when Goldmane's flows arrive"
		return r
	}
	start := latest(evidence, sp.Since)
	for i, d := range denies {
		if d.Last.Before(start) {
			continue
		}
		if acceptedBy(promote.Accept, d.Key, sp.Project, projectOf) >= 0 {
			r.Accepted++
			continue
		}
		r.Unexpected++
		if r.LastDeny == nil || d.Last.After(r.LastDeny.Last) {
			r.LastDeny = &denies[i]
		}
	}
	r.QuietSince = start
	if r.LastDeny != nil {
		r.QuietSince = latest(start, r.LastDeny.Last)
	}
	r.Quiet = max(now.Sub(r.QuietSince), 0)
	r.ReadyAt = r.QuietSince.Add(promote.QuietFor.Duration)
	r.Ready = r.Quiet >= promote.QuietFor.Duration
	r.Reason = reason(r, promote.QuietFor.Duration)
	return r
}

func reason(r Readiness, quietFor time.Duration) string {
	var what string
	if r.LastDeny == nil {
		what = "no unexpected pending deny"
	} else {
		what = "last unexpected pending deny " + DescribeKey(r.LastDeny.Key) + " at " + r.LastDeny.Last.UTC().Format(time.RFC3339)
	}
	if r.Ready {
		return fmt.Sprintf("quiet for %v (%s), at least %v", r.Quiet.Round(time.Minute), what, quietFor)
	}
	return fmt.Sprintf("quiet for %v of %v (%s); passes at %s if it stays quiet",
		r.Quiet.Round(time.Minute), quietFor, what, r.ReadyAt.UTC().Format(time.RFC3339))
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// AcceptedBy returns the index of the first entry of accept that matches a
// pending deny of project, or -1. A folded key is never accepted: what it
// stands for is not known.
func AcceptedBy(accept []config.AcceptedDeny, k Key, project string, projectOf ProjectOf) int {
	if projectOf == nil {
		projectOf = func(string) string { return "" }
	}
	return acceptedBy(accept, k, project, projectOf)
}

func acceptedBy(accept []config.AcceptedDeny, k Key, project string, projectOf ProjectOf) int {
	if k.Folded {
		return -1
	}
	for i, a := range accept {
		if accepts(a, k, project, projectOf) {
			return i
		}
	}
	return -1
}

func accepts(a config.AcceptedDeny, k Key, project string, projectOf ProjectOf) bool {
	switch {
	case a.Project != "" && a.Project != project,
		a.Namespace != "" && !globMatch(a.Namespace, k.Namespace),
		a.Direction != "" && a.Direction != string(k.Direction),
		a.PeerNamespace != "" && (k.PeerNamespace == "" || !globMatch(a.PeerNamespace, k.PeerNamespace)),
		a.PeerProject != "" && (k.PeerNamespace == "" || projectOf(k.PeerNamespace) != a.PeerProject),
		a.PeerNetwork != "" && (k.PeerType != Network || k.PeerName != a.PeerNetwork),
		a.Protocol != "" && !strings.EqualFold(a.Protocol, k.Protocol),
		len(a.Ports) > 0 && !slices.Contains(a.Ports, k.Port):
		return false
	}
	return true
}

// globMatch matches a name against a pattern with at most one '*', as
// the configuration's namespace patterns are matched everywhere.
func globMatch(pattern, name string) bool {
	prefix, suffix, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == name
	}
	return len(name) >= len(prefix)+len(suffix) && strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix)
}

// DescribeKey says what a pending deny is, in words: "ingress of shop
// from data on TCP 5432".
func DescribeKey(k Key) string {
	if k.Folded {
		return fmt.Sprintf("%s of %s (one of many, folded)", k.Direction, k.Namespace)
	}
	peer := k.PeerNamespace
	switch {
	case peer == "" && k.PeerType == Network:
		peer = "outside the cluster (" + k.PeerName + ")"
	case peer == "" && k.PeerName != "":
		peer = k.PeerType + " " + k.PeerName
	case peer == "":
		peer = "an unknown endpoint"
	}
	word := "from"
	if k.Direction == Egress {
		word = "to"
	}
	return fmt.Sprintf("%s of %s %s %s on %s %d", k.Direction, k.Namespace, word, peer, k.Protocol, k.Port)
}
