package replay

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// Commits are the writes of an audit log in the order the API server
// committed them.
type Commits struct {
	Writes []testbed.Write
	// Failed counts writes answered with an error (not 2xx): nothing
	// was committed.
	Failed int
	// NoOps counts updates and patches that changed nothing: the API
	// server answered with a version committed before another write
	// had already completed, so the write itself committed nothing.
	NoOps int
}

// Order puts writes (in any order) in the order etcd committed them. A
// write whose answer carries the stored object is placed by the object's
// resourceVersion: one etcd, one revision counter. A write that removed
// an object (a delete answered with a Status, or the finalize that let a
// namespace go) has no version of its own; it is placed before the first
// versioned write that the API server received after it. That place is
// after every write that completed (stageTimestamp) before the removal
// was received, and before every write received after it completed: a
// write committed before the removal was received has a smaller version
// than any write received after it. Among writes that overlapped the
// removal in time it is one order in which they could have been
// committed, the one a client that sent them one after another saw.
func Order(writes []testbed.Write) (Commits, error) {
	var out Commits
	var versioned, timed []versionedWrite
	for _, w := range writes {
		if w.Code < 200 || w.Code >= 300 {
			out.Failed++
			continue
		}
		if w.Object == nil || removes(w) {
			// Writes the log keeps without a body (leases) are placed
			// by time too.
			timed = append(timed, versionedWrite{w: w})
			continue
		}
		rv, err := strconv.ParseUint(w.ResourceVersion, 10, 64)
		if err != nil {
			return out, fmt.Errorf("%s: resourceVersion %q of the stored object is not an etcd revision: %w", w, w.ResourceVersion, err)
		}
		versioned = append(versioned, versionedWrite{w: w, rv: rv})
	}
	slices.SortStableFunc(versioned, func(a, b versionedWrite) int {
		return cmp.Or(cmp.Compare(a.rv, b.rv), a.w.Received.Compare(b.w.Received))
	})
	versioned, out.NoOps = dropNoOps(versioned)
	slices.SortStableFunc(timed, func(a, b versionedWrite) int { return a.w.Received.Compare(b.w.Received) })
	out.Writes = placeByTime(versioned, timed)
	return out, nil
}

type versionedWrite struct {
	w  testbed.Write
	rv uint64
}

// dropNoOps leaves out writes answered with a version older than one a
// write that completed before they were received had committed: they
// cannot be commits (a commit's revision is newer than every revision
// before it), so they are updates that found nothing to change and
// answered with the object as it was. Left in, their version would put
// them before writes they followed.
func dropNoOps(sorted []versionedWrite) ([]versionedWrite, int) {
	var out []versionedWrite
	dropped := 0
	for i, x := range sorted {
		stale := slices.ContainsFunc(sorted[i+1:], func(later versionedWrite) bool {
			return later.rv > x.rv && later.w.Done.Before(x.w.Received)
		})
		if stale {
			dropped++
			continue
		}
		out = append(out, x)
	}
	return out, dropped
}

// placeByTime inserts each timed write (sorted by reception) before the
// first versioned write received after it.
func placeByTime(versioned, timed []versionedWrite) []testbed.Write {
	out := make([]testbed.Write, 0, len(versioned)+len(timed))
	next := 0
	for _, v := range versioned {
		for next < len(timed) && timed[next].w.Received.Before(v.w.Received) {
			out = append(out, timed[next].w)
			next++
		}
		out = append(out, v.w)
	}
	for ; next < len(timed); next++ {
		out = append(out, timed[next].w)
	}
	return out
}

// removes says whether a write removed its object, so that the API
// server answered without a version of the commit: a delete answered
// with a Status or with the object gone, or a write that left an object
// being deleted without finalizers (a namespace's finalize), which the
// API server then removes.
func removes(w testbed.Write) bool {
	u := w.Object
	if u == nil {
		return w.Verb == "delete"
	}
	if u.GetDeletionTimestamp() == nil {
		return w.Verb == "delete"
	}
	if len(u.GetFinalizers()) > 0 {
		return false
	}
	if u.GetKind() == "Namespace" {
		spec, _ := u.Object["spec"].(map[string]any)
		if fin, _ := spec["finalizers"].([]any); len(fin) > 0 {
			return false
		}
	}
	return true
}
