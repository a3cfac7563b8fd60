package flows

import (
	"hash/fnv"
	"strconv"
)

// flowKey identifies a flow the way Goldmane's FlowKey does: both ends,
// port, protocol, service, reporter, action and both traces, but not the
// interval. Labels are not part of it, as in Goldmane. Goldmane's own flow
// ID is no use across its restarts, so calico-pni hashes the key (64-bit
// FNV-1a: collisions are negligible at the number of flows kept).
func flowKey(f Flow) uint64 {
	h := fnv.New64a()
	w := func(s string) {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	for _, e := range []Endpoint{f.Src, f.Dst} {
		w(e.Namespace)
		w(e.Name)
		w(e.Type)
	}
	w(strconv.Itoa(f.Port))
	w(f.Protocol)
	w(f.Service.Namespace)
	w(f.Service.Name)
	w(f.Service.PortName)
	w(strconv.Itoa(f.Service.Port))
	w(string(f.Reporter))
	w(f.Action)
	for _, trace := range [][]Hit{f.Enforced, f.Pending} {
		w(strconv.Itoa(len(trace)))
		for _, hit := range trace {
			writeHit(w, hit)
		}
	}
	return h.Sum64()
}

func writeHit(w func(string), h Hit) {
	w(h.Kind)
	w(h.Namespace)
	w(h.Name)
	w(h.Tier)
	w(h.Action)
	w(strconv.Itoa(h.PolicyIndex))
	w(strconv.Itoa(h.RuleIndex))
	if h.Trigger != nil {
		w("trigger")
		writeHit(w, *h.Trigger)
	}
}

// flowID identifies one flow log entry: its key and its interval. The
// same entry sent twice (a stream resumed with overlap, a backfill after a
// Goldmane restart) has the same ID.
type flowID struct {
	key   uint64
	start int64
}
