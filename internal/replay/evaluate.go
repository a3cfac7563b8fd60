package replay

import (
	"errors"
	"fmt"
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
	// Egress says what decided at the source pod, Ingress at the
	// destination pod ("" for a plain address, which has no policy).
	Egress, Ingress string
}

func (d Decision) String() string {
	out := string(d.Verdict)
	if d.Egress != "" {
		out += "; egress: " + d.Egress
	}
	if d.Ingress != "" {
		out += "; ingress: " + d.Ingress
	}
	return out
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
		dir    direction
		local  *Endpoint
		reason *string
	}{{egress, c.Src, &d.Egress}, {ingress, c.Dst, &d.Ingress}} {
		if side.local.Pod == nil {
			continue
		}
		v, reason, err := ix.side(side.local.Pod, side.dir, t)
		if err != nil {
			return Decision{}, fmt.Errorf("%s: %s of %s: %w", c, side.dir, side.local.Name, err)
		}
		*side.reason = reason
		if v == Denied {
			d.Verdict = Denied
			if side.dir == egress {
				break
			}
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
func (ix *Index) side(pod *Pod, d direction, t traffic) (Verdict, string, error) {
	l := ix.podLabels(pod)
	for _, p := range ix.broken {
		if p.selects == nil || p.selects.matches(l) {
			return "", "", p.err
		}
	}
	trail := ""
	for _, tp := range ix.tiers {
		var selecting []*policy
		for _, p := range tp.policies {
			if p.governs[d] && p.selects.matches(l) {
				selecting = append(selecting, p)
			}
		}
		if len(selecting) == 0 {
			continue
		}
		if tp.err != nil {
			return "", "", tp.err
		}
		v, reason, passed, err := ix.tierVerdict(tp, selecting, d, t)
		if err != nil || !passed {
			return v, trail + reason, err
		}
		trail += reason + ", then "
	}
	return Allowed, trail + "the namespace's profile allows (no policy decided)", nil
}

// tierVerdict evaluates the selecting policies of one tier; passed says
// the tier passed the connection on.
func (ix *Index) tierVerdict(tp *tierPolicies, selecting []*policy, d direction, t traffic) (Verdict, string, bool, error) {
	for _, p := range selecting {
		for i, r := range p.rules[d] {
			ok, err := ix.ruleMatches(r, t)
			if err != nil {
				return "", "", false, fmt.Errorf("%s %s rule %d: %w", p, d, i, err)
			}
			if !ok {
				continue
			}
			hit := fmt.Sprintf("%s rule %d of %s (tier %s)", r.action, i, p, tp.tier.name)
			switch r.action {
			case actionAllow:
				return Allowed, hit, false, nil
			case actionDeny:
				return Denied, hit, false, nil
			case actionPass:
				return "", hit, true, nil
			}
		}
	}
	end := fmt.Sprintf("end of tier %s (%s selects it)", tp.tier.name, selecting[0])
	if tp.tier.defaultAction == actionPass {
		return "", end + ": Pass", true, nil
	}
	return Denied, end, false, nil
}
