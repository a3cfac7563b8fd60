package replay

import (
	"errors"
	"fmt"
	"strings"
)

// Verdict is what happens to a connection.
type Verdict string

const (
	Allowed Verdict = "allowed"
	Denied  Verdict = "denied"
)

// Decision is a connection's verdict and what decided each side.
type Decision struct {
	Verdict Verdict
	// egress and ingress trace the source's and destination's sides (nil
	// for a plain address, which has no policy).
	egress, ingress *trace
}

// Egress says what decided at the source pod ("" for a plain address).
func (d Decision) Egress() string { return d.egress.String() }

// Ingress says what decided at the destination pod ("" for a plain
// address).
func (d Decision) Ingress() string { return d.ingress.String() }

func (d Decision) String() string {
	out := string(d.Verdict)
	if d.egress != nil {
		out += "; egress: " + d.Egress()
	}
	if d.ingress != nil {
		out += "; ingress: " + d.Ingress()
	}
	return out
}

// step is what one tier did on a side: a rule that matched, or the
// tier's end (rule -1, policy the first that selected the endpoint).
type step struct {
	action string
	policy *policy
	rule   int
	tier   string
}

// trace is what a side went through; after its last step (if that
// passed) the namespace's profile allowed. Formatting waits until a
// report needs it.
type trace []step

func (tr *trace) String() string {
	if tr == nil {
		return ""
	}
	var parts []string
	for _, s := range *tr {
		if s.rule < 0 {
			parts = append(parts, fmt.Sprintf("end of tier %s (%s selects it): %s", s.tier, s.policy, s.action))
		} else {
			parts = append(parts, fmt.Sprintf("%s rule %d of %s (tier %s)", s.action, s.rule, s.policy, s.tier))
		}
	}
	if n := len(*tr); n == 0 || (*tr)[n-1].action == actionPass {
		parts = append(parts, "the namespace's profile allows (no policy decided)")
	}
	return strings.Join(parts, ", then ")
}

// Evaluate decides a connection the way Felix would: egress at the
// source if it is a pod, then ingress at the destination if it is a pod
// (felix/rules/endpoints.go); allowed only if both allow. A plain
// address has no policy of its own.
func (ix *Index) Evaluate(c Conn) (Decision, error) {
	if ix.err != nil {
		return Decision{}, ix.err
	}
	if err := ix.checkConn(c); err != nil {
		return Decision{}, fmt.Errorf("%s: %w", c, err)
	}
	proto, _ := protocolByName(c.Protocol)
	t := traffic{conn: c, protocol: proto}
	d := Decision{Verdict: Allowed}
	for _, side := range []struct {
		dir   direction
		local *Endpoint
		trace **trace
	}{{egress, c.Src, &d.egress}, {ingress, c.Dst, &d.ingress}} {
		if side.local.Pod == nil {
			continue
		}
		v, tr, err := ix.side(side.local.Pod, side.dir, t)
		if err != nil {
			return Decision{}, fmt.Errorf("%s: %s of %s: %w", c, side.dir, side.local.Name, err)
		}
		*side.trace = &tr
		if v == Denied {
			d.Verdict = Denied
			break
		}
	}
	return d, nil
}

// traffic is a connection with its protocol number.
type traffic struct {
	conn     Conn
	protocol uint8
}

// checkConn refuses what the evaluator cannot decide.
func (ix *Index) checkConn(c Conn) error {
	if c.Src == nil || c.Dst == nil {
		return errors.New("a connection needs both ends")
	}
	if c.Src.Pod == nil && c.Dst.Pod == nil {
		return errors.New("between two plain addresses no Calico endpoint decides")
	}
	if c.Src.Addr.Is4() != c.Dst.Addr.Is4() {
		return errors.New("the ends are of different IP families")
	}
	if p, err := protocolByName(c.Protocol); err != nil || !hasPorts(p) {
		return fmt.Errorf("protocol %q: a connection is TCP, UDP or SCTP", c.Protocol)
	}
	for _, ep := range []*Endpoint{c.Src, c.Dst} {
		if ep.Pod != nil {
			if _, ok := ix.state.Namespaces[ep.Pod.Namespace]; !ok {
				return fmt.Errorf("pod %s: its namespace does not exist", ep.Name)
			}
		}
	}
	// Felix lets a host reach its own pods (kubelet probes) whatever the
	// policies say (felix/rules/static.go); that path is not modelled.
	if c.Src.Pod == nil && c.Src.Node != "" && c.Dst.Node == c.Src.Node {
		return fmt.Errorf("a host's traffic to a pod on the same node (%s) is not modelled", c.Src.Node)
	}
	return nil
}

// side walks the tiers for a pod in one direction: the first matching
// rule of the policies that select it decides (Allow, Deny; Pass goes on
// to the next tier; Log goes on); a tier with a selecting policy and no
// decision ends with its default action; after the last tier the
// namespace's profile allows.
func (ix *Index) side(pod *Pod, d direction, t traffic) (Verdict, trace, error) {
	tiers, err := ix.selected(pod, d)
	if err != nil {
		return "", nil, err
	}
	var tr trace
	for _, ts := range tiers {
		s := tierStep(ix, ts, d, t)
		tr = append(tr, s)
		switch s.action {
		case actionAllow:
			return Allowed, tr, nil
		case actionDeny:
			return Denied, tr, nil
		}
	}
	return Allowed, tr, nil
}

// tierStep evaluates the policies of a tier that select the endpoint.
func tierStep(ix *Index, ts tierSelection, d direction, t traffic) step {
	for _, p := range ts.policies {
		for i, r := range p.rules[d] {
			if r.action != actionLog && ix.ruleMatches(r, t) {
				return step{action: r.action, policy: p, rule: i, tier: ts.tier.name}
			}
		}
	}
	return step{action: ts.tier.defaultAction, policy: ts.policies[0], rule: -1, tier: ts.tier.name}
}

// tierSelection is a tier and its policies that select an endpoint in a
// direction, in order.
type tierSelection struct {
	tier     tier
	policies []*policy
}

// selected returns, for a pod and a direction, the tiers with policies
// that select it; a policy that cannot be read and may select it, or a
// tier that cannot be ordered, is an error.
func (ix *Index) selected(pod *Pod, d direction) ([]tierSelection, error) {
	key := selectionKey{pod, d}
	if s, ok := ix.selections[key]; ok {
		return s.tiers, s.err
	}
	tiers, err := ix.selectUncached(pod, d)
	ix.selections[key] = selection{tiers, err}
	return tiers, err
}

type selectionKey struct {
	pod *Pod
	dir direction
}

type selection struct {
	tiers []tierSelection
	err   error
}

func (ix *Index) selectUncached(pod *Pod, d direction) ([]tierSelection, error) {
	l := ix.podLabels(pod)
	for _, p := range ix.broken {
		if p.selects == nil || p.selects.matches(l) {
			return nil, p.err
		}
	}
	var out []tierSelection
	for _, tp := range ix.tiers {
		ts := tierSelection{tier: tp.tier}
		for _, p := range tp.policies {
			if p.governs[d] && p.selects.matches(l) {
				ts.policies = append(ts.policies, p)
			}
		}
		if len(ts.policies) == 0 {
			continue
		}
		if tp.err != nil {
			return nil, tp.err
		}
		out = append(out, ts)
	}
	return out, nil
}
