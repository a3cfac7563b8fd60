package controller

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/flows"
	"github.com/calico-pni/calico-pni/policies"
)

// topPeers is how many peers a staged namespace's status names.
const topPeers = 3

// addPending puts the pending denies in the status of every staged
// namespace, or why there are none to show. Until the evidence has settled
// (after a start, or a change of the flows settings), each keeps what
// its status says, so that a restart of calico-pni rewrites nothing.
func (c *Controller) addPending(d *policies.Desired, state *cluster.State) {
	reading := c.evidence.Load() != nil
	view := c.view.Load()
	for i := range d.Namespaces {
		ns := &d.Namespaces[i]
		if ns.Status.State != policies.Staged {
			continue
		}
		if !reading {
			ns.Status.Pending = &policies.Pending{Unavailable: notReadReason}
			continue
		}
		if view == nil {
			ns.Status.Pending = livePending(state, ns.Name)
			continue
		}
		ns.Status.Pending = view.of(ns.Name, ns.Status.Project)
	}
}

// livePending is the pending denies a namespace's status says now.
func livePending(state *cluster.State, name string) *policies.Pending {
	text := state.Namespaces[name].Annotations[policies.StatusAnnotation]
	if text == "" {
		return nil
	}
	st, err := policies.DecodeStatus(text)
	if err != nil {
		return nil
	}
	return st.Pending
}

// pendingView is the coarse summary of the pending denies that the pass
// puts in the staged namespaces' status.
type pendingView struct {
	// byNamespace holds the namespaces with pending denies; the others
	// get zero.
	byNamespace map[string]*policies.Pending
	zero        *policies.Pending
	// gate is what the promotion gate says of each staged project.
	gate map[string]projectGate
}

// projectGate is the gate's answer for a project as the statuses show it.
type projectGate struct {
	readyAt, lastDeny string
}

func (v *pendingView) of(namespace, project string) *policies.Pending {
	p := v.zero
	if own, ok := v.byNamespace[namespace]; ok {
		p = own
	}
	g, ok := v.gate[project]
	if !ok {
		return p
	}
	out := *p
	out.ReadyAt, out.LastDeny = g.readyAt, g.lastDeny
	return &out
}

// gateView turns the gate's answers into what the statuses show: when
// each project passes, rounded up to the hour, and its last unexpected
// deny.
func gateView(gate []flows.Readiness) map[string]projectGate {
	out := make(map[string]projectGate, len(gate))
	for _, r := range gate {
		g := projectGate{}
		if !r.ReadyAt.IsZero() {
			at := r.ReadyAt.UTC()
			if t := at.Truncate(time.Hour); !t.Equal(at) {
				at = t.Add(time.Hour)
			}
			g.readyAt = at.Format(time.RFC3339)
		}
		if r.LastDeny != nil {
			g.lastDeny = flows.DescribeKey(r.LastDeny.Key)
		}
		out[r.Project] = g
	}
	return out
}

// summarize makes the coarse view of the pending denies: per namespace
// the flows denied by the walls and by tenants, rounded down to a power
// of ten, and the three peers with most such flows.
func summarize(sum flows.Summary, window time.Duration) *pendingView {
	w := windowText(window)
	v := &pendingView{byNamespace: map[string]*policies.Pending{}, zero: &policies.Pending{Flows: "0", Window: w}}
	type peerKey struct {
		namespace string
		direction flows.Direction
		peer      string
	}
	type peerCounts struct {
		flows int64
		ports map[string]bool
	}
	peers := map[peerKey]*peerCounts{}
	for _, r := range sum.Rows {
		if r.Cause != flows.CauseWall || r.Folded {
			continue
		}
		k := peerKey{r.Namespace, r.Direction, peerName(r)}
		pc := peers[k]
		if pc == nil {
			pc = &peerCounts{ports: map[string]bool{}}
			peers[k] = pc
		}
		pc.flows += r.Flows
		pc.ports[portText(r.Protocol, r.Port)] = true
	}
	byNS := map[string][]policies.PendingPeer{}
	counts := map[string][]int64{}
	for k, pc := range peers {
		byNS[k.namespace] = append(byNS[k.namespace], policies.PendingPeer{Direction: string(k.direction), Peer: k.peer, Ports: sortedSet(pc.ports)})
		counts[k.namespace] = append(counts[k.namespace], pc.flows)
	}
	for _, ns := range sum.Namespaces {
		if ns.Flows == 0 && ns.TenantFlows == 0 {
			continue
		}
		p := &policies.Pending{Flows: magnitude(ns.Flows), Window: w}
		if ns.TenantFlows > 0 {
			p.TenantFlows = magnitude(ns.TenantFlows)
		}
		p.Peers, p.MorePeers = top(byNS[ns.Namespace], counts[ns.Namespace])
		v.byNamespace[ns.Namespace] = p
	}
	return v
}

// top picks the peers with most flows, compared by order of magnitude so
// that peers of similar counts do not swap places from one summary to the
// next, and returns them sorted by name.
func top(peers []policies.PendingPeer, counts []int64) ([]policies.PendingPeer, int) {
	idx := make([]int, len(peers))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(magnitudeOf(counts[b]), magnitudeOf(counts[a])), comparePeers(peers[a], peers[b]))
	})
	n := min(topPeers, len(idx))
	out := make([]policies.PendingPeer, n)
	for i := range n {
		out[i] = peers[idx[i]]
	}
	slices.SortFunc(out, comparePeers)
	return out, len(peers) - n
}

func comparePeers(a, b policies.PendingPeer) int {
	return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Direction, b.Direction))
}

// magnitude writes a count rounded down to a power of ten: "0", "1+",
// "10+", "100+".
func magnitude(n int64) string {
	if n <= 0 {
		return "0"
	}
	return strconv.FormatInt(magnitudeOf(n), 10) + "+"
}

func magnitudeOf(n int64) int64 {
	if n <= 0 {
		return 0
	}
	m := int64(1)
	for n >= m*10 {
		m *= 10
	}
	return m
}

// peerName names the other end of a pending deny for people.
func peerName(r flows.Row) string {
	switch {
	case r.PeerNamespace != "" && r.PeerProject != "":
		return r.PeerNamespace + " (" + r.PeerProject + ")"
	case r.PeerNamespace != "":
		return r.PeerNamespace
	case r.PeerType == flows.Network:
		return "outside the cluster (" + r.PeerName + ")"
	case r.PeerName != "":
		return r.PeerType + " " + r.PeerName
	}
	return "an unknown endpoint"
}

func portText(protocol string, port int) string {
	if port == 0 {
		return protocol
	}
	return fmt.Sprintf("%s %d", protocol, port)
}

// windowText writes a window as the configuration does: "24h", "90m".
func windowText(d time.Duration) string {
	s := strings.TrimSuffix(d.String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
