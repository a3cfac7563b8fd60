package evaluator

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/calico-pni/calico-pni/calico"
)

// The matrix evaluates many pairs, and most of them alike: the egress of a
// source depends on the destination only through what the rules of the
// source's policies read of it, and the ingress of a destination on the
// source likewise. sideTable evaluates one direction once per distinct
// (policies of the local end, what their rules see of the local end, what
// they see of the peer end) and looks the rest up. Pairs with a host or an
// endpoint that cannot be evaluated take the full path.

// sideOutcome is one side evaluated on every port (or on the matrix's
// port): ranges of ports with their verdict and decider.
type sideOutcome struct {
	// id numbers outcomes, for remembering their combinations.
	id     int64
	ranges []sideRange
	// policed says the side was decided by policies of its own, which
	// makes it the one named for an allowed connection.
	policed bool
}

type sideRange struct {
	ports   PortRange
	verdict Verdict
	decider string
	reason  string
}

// sideList is the policies selecting a local end, and their rules, with
// the peers sorted into classes that every one of these rules treats
// alike.
type sideList struct {
	tiers []selectedTier
	rules []*rule
	// peerSig[d] numbers the peer class of class d; peerRep[i] is a class
	// of peer class i.
	peerSig []int32
	peerRep []int
}

// localKey groups local ends that have the same policies and that every
// rule of them treats alike, with the outcomes met so far, by peer class.
type localKey struct {
	list     *sideList
	local    *Endpoint
	outcomes []atomic.Pointer[sideOutcome]
}

type sideTable struct {
	ix   *Index
	dir  calico.PolicyType
	reps []*Endpoint
	o    MatrixOptions
	// keys[c] is the local key of class c, nil for a class that takes the
	// full path.
	keys []*localKey
	// peer holds, per rule, what the rule's peer entity sees of each
	// class.
	peer map[*rule][]Match
	// ports and services describe each class's named ports and Service
	// memberships, for rules that match them.
	ports, services []string
	internMu        sync.Mutex
	interned        map[string]*sideOutcome
}

func newSideTable(ix *Index, dir calico.PolicyType, reps []*Endpoint, o MatrixOptions) *sideTable {
	t := &sideTable{ix: ix, dir: dir, reps: reps, o: o, keys: make([]*localKey, len(reps)), peer: map[*rule][]Match{},
		ports: make([]string, len(reps)), services: make([]string, len(reps)), interned: map[string]*sideOutcome{}}
	for c, ep := range reps {
		t.ports[c], t.services[c] = t.describe(ep)
	}
	lists := map[string]*sideList{}
	var order []*sideList
	keys := map[string]*localKey{}
	var b strings.Builder
	for c, ep := range reps {
		if !fastEndpoint(ep) {
			continue
		}
		tiers, err := ix.selecting(ep, dir)
		if err != nil {
			continue
		}
		b.Reset()
		for _, st := range tiers {
			for _, cp := range st.policies {
				b.WriteString(strconv.Itoa(cp.pos))
				b.WriteByte(',')
			}
		}
		listKey := b.String()
		list := lists[listKey]
		if list == nil {
			list = &sideList{tiers: tiers}
			for _, st := range tiers {
				for _, cp := range st.policies {
					list.rules = append(list.rules, cp.rules(dir)...)
				}
			}
			lists[listKey] = list
			order = append(order, list)
		}
		v4, v6 := ep.families()
		b.WriteString("|" + strconv.FormatBool(v4) + strconv.FormatBool(v6) + "|")
		for _, f := range []int{4, 6} {
			if (f == 4 && !v4) || (f == 6 && !v6) {
				continue
			}
			for _, r := range list.rules {
				b.WriteByte(byte('0' + ix.endPart(t.localEntity(r), ep, f)))
			}
			b.WriteByte('|')
		}
		b.WriteString(t.ports[c] + "|" + t.services[c])
		key := keys[b.String()]
		if key == nil {
			key = &localKey{list: list, local: ep}
			keys[b.String()] = key
		}
		t.keys[c] = key
	}
	t.peerRows(order)
	parallelEach(len(order), func(i int) { t.sortPeers(order[i]) })
	for _, key := range keys {
		key.outcomes = make([]atomic.Pointer[sideOutcome], len(key.list.peerRep))
	}
	return t
}

// peerRows computes, for every rule of the lists, what its peer entity
// sees of every class.
func (t *sideTable) peerRows(lists []*sideList) {
	var rules []*rule
	for _, l := range lists {
		for _, r := range l.rules {
			if _, ok := t.peer[r]; !ok {
				t.peer[r] = nil
				rules = append(rules, r)
			}
		}
	}
	rows := make([][]Match, len(rules))
	parallelEach(len(rules), func(i int) {
		row := make([]Match, len(t.reps))
		e := t.peerEntity(rules[i])
		for d, ep := range t.reps {
			v4, _ := ep.families()
			row[d] = t.ix.endPart(e, ep, pickFamily(v4 || len(ep.Addrs) == 0))
		}
		rows[i] = row
	})
	for i, r := range rules {
		t.peer[r] = rows[i]
	}
}

// sortPeers numbers the peer classes of a list.
func (t *sideTable) sortPeers(l *sideList) {
	rows := make([][]Match, len(l.rules))
	usesPorts, usesServices := false, false
	for i, r := range l.rules {
		rows[i] = t.peer[r]
		e := t.peerEntity(r)
		usesServices = usesServices || e.service != nil
		for _, p := range append(slices.Clone(r.dst.ports), r.dst.notPorts...) {
			usesPorts = usesPorts || p.Name != ""
		}
		usesServices = usesServices || r.dst.service != nil
	}
	ids := map[string]int32{}
	l.peerSig = make([]int32, len(t.reps))
	buf := make([]byte, 0, len(rows)+64)
	for d, ep := range t.reps {
		buf = buf[:0]
		v4, v6 := ep.families()
		buf = strconv.AppendBool(buf, v4)
		buf = strconv.AppendBool(buf, v6)
		for _, row := range rows {
			buf = append(buf, byte('0'+row[d]))
		}
		if usesPorts {
			buf = append(buf, t.ports[d]...)
		}
		if usesServices {
			buf = append(buf, '|')
			buf = append(buf, t.services[d]...)
		}
		if !fastEndpoint(ep) {
			// A host, an external address or a pod that cannot be
			// evaluated is a class of its own: its side depends on more
			// than what the rules see of its address (its node, the
			// tunnel and node addresses its traffic may come from;
			// Index.side).
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(d), 10)
		}
		id, ok := ids[string(buf)]
		if !ok {
			id = int32(len(l.peerRep))
			ids[string(buf)] = id
			l.peerRep = append(l.peerRep, d)
		}
		l.peerSig[d] = id
	}
}

func parallelEach(n int, fn func(int)) {
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// fastEndpoint reports whether an endpoint's pairs can be looked up: a
// pod that can be evaluated (hosts have cases of their own).
func fastEndpoint(ep *Endpoint) bool { return ep.Kind == PodEndpoint && ep.Unknown == "" }

func (t *sideTable) localEntity(r *rule) *entity {
	if t.dir == calico.Ingress {
		return &r.dst
	}
	return &r.src
}

func (t *sideTable) peerEntity(r *rule) *entity {
	if t.dir == calico.Ingress {
		return &r.src
	}
	return &r.dst
}

// describe lists an endpoint's named ports and Service memberships.
func (t *sideTable) describe(ep *Endpoint) (string, string) {
	var ports, services strings.Builder
	for _, p := range ep.Ports {
		ports.WriteString(p.Name + "=" + p.Protocol + strconv.Itoa(int(p.Port)) + ",")
	}
	for key, svc := range t.ix.services {
		for _, se := range svc.Endpoints {
			if slices.Contains(ep.Addrs, se.Addr) {
				services.WriteString(key + ":" + se.Protocol + strconv.Itoa(int(se.Port)) + ",")
			}
		}
	}
	return ports.String(), services.String()
}

// endPart evaluates the criteria of an entity on one end: its nets and
// selectors.
func (ix *Index) endPart(e *entity, ep *Endpoint, family int) Match {
	m := newMatcher()
	if !m.add(ix.netsMatch(e, ep, family)) || !m.add(ix.selectorMatch(e, ep)) {
		return No
	}
	return m.result
}

// outcome returns the side of local class l with peer class p.
func (t *sideTable) outcome(l, p int) *sideOutcome {
	key := t.keys[l]
	sig := key.list.peerSig[p]
	slot := &key.outcomes[sig]
	if out := slot.Load(); out != nil {
		return out
	}
	out := t.intern(t.evaluate(key.local, t.reps[key.list.peerRep[sig]]))
	if !slot.CompareAndSwap(nil, out) {
		return slot.Load()
	}
	return out
}

// intern returns the one copy of an outcome with this content, so that
// equal outcomes share an id.
func (t *sideTable) intern(out *sideOutcome) *sideOutcome {
	var b strings.Builder
	b.WriteString(strconv.FormatBool(out.policed))
	for _, r := range out.ranges {
		b.WriteString("|" + r.ports.String() + " " + string(r.verdict) + " " + r.decider + " " + r.reason)
	}
	t.internMu.Lock()
	defer t.internMu.Unlock()
	if same, ok := t.interned[b.String()]; ok {
		return same
	}
	out.id = int64(len(t.interned) + 1)
	t.interned[b.String()] = out
	return out
}

// evaluate evaluates one side on every port segment its rules cut.
func (t *sideTable) evaluate(local, peer *Endpoint) *sideOutcome {
	family, err := connectionFamily(local, peer)
	out := &sideOutcome{}
	if err != nil {
		out.ranges = []sideRange{{ports: PortRange{1, 65535}, verdict: Indeterminate, reason: err.Error()}}
		return out
	}
	segments := []PortRange{{t.o.Port, t.o.Port}}
	if t.o.Port == 0 {
		cuts := newPortCuts()
		dst := peer
		if t.dir == calico.Ingress {
			dst = local
		}
		t.ix.sidePortCuts(local, dst, t.dir, t.o.Protocol, cuts)
		segments = portSegments(cuts)
	}
	for _, seg := range segments {
		s := t.ix.side(t.dir, local, peer, Traffic{Protocol: t.o.Protocol, Port: seg.Min, Family: family})
		out.policed = s.Policed && len(s.Tiers) > 0
		r := sideRange{ports: seg, verdict: s.Verdict, decider: sideDecider(s)}
		if s.Verdict == Indeterminate {
			r.reason = s.Reason
		}
		if n := len(out.ranges); n > 0 && out.ranges[n-1].verdict == r.verdict && out.ranges[n-1].decider == r.decider {
			out.ranges[n-1].ports.Max = seg.Max
			continue
		}
		out.ranges = append(out.ranges, r)
	}
	return out
}
