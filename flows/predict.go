package flows

import (
	"cmp"
	"slices"
	"strings"
)

// Predictor says what calico-pni's evaluator expects for the side of a
// flow its trace belongs to (Flow.Side: the source's egress for
// ReporterSrc, the destination's ingress for ReporterDst): the action,
// "allow" or "deny", and the deciding policy as PolicyString names it. ok
// is false when it cannot tell (an unknown pod, an indeterminate verdict).
type Predictor func(Flow) (action string, policy string, ok bool)

// Verdict is an action and the policy that decided it.
type Verdict struct {
	Action string
	// Policy is a PolicyString; "" when the trace named none.
	Policy string
}

// Disagreement is a flow whose prediction differs from what Felix did.
type Disagreement struct {
	Flow                Flow
	Observed, Predicted Verdict
}

// Comparison is the outcome of comparing predictions with flows.
type Comparison struct {
	// Compared counts flows with a prediction, Agreed those that matched,
	// Unpredicted those the predictor could not tell.
	Compared, Agreed, Unpredicted int
	Disagreements                 []Disagreement
}

// Observed returns what Felix did on the flow's side: its action and the
// last hit of the enforced trace.
func Observed(f Flow) Verdict {
	v := Verdict{Action: strings.ToLower(f.Action)}
	if h, ok := Decision(f.Enforced); ok {
		v.Policy = PolicyString(h)
	}
	return v
}

// CompareFlow compares one flow with its prediction. It reports whether a
// prediction was made and, if so, whether it agrees.
func CompareFlow(f Flow, predict Predictor) (d Disagreement, predicted, agrees bool) {
	action, policy, ok := predict(f)
	action = strings.ToLower(action)
	if !ok || (action != "allow" && action != "deny") {
		return Disagreement{}, false, false
	}
	observed := Observed(f)
	d = Disagreement{Flow: f, Observed: observed, Predicted: Verdict{Action: action, Policy: policy}}
	agrees = action == observed.Action && (observed.Policy == "" || policy == "" || policy == observed.Policy)
	return d, true, agrees
}

// Compare compares the flows of enforced namespaces (those on the side
// whose policies the trace is) with predictions. Disagreements are sorted
// by namespace, peer, port and protocol.
func Compare(flows []Flow, predict Predictor, enforced func(namespace string) bool) Comparison {
	var c Comparison
	for _, f := range flows {
		local, _, _ := f.Side()
		if enforced != nil && !enforced(local.Namespace) {
			continue
		}
		d, predicted, agrees := CompareFlow(f, predict)
		switch {
		case !predicted:
			c.Unpredicted++
		case agrees:
			c.Compared++
			c.Agreed++
		default:
			c.Compared++
			c.Disagreements = append(c.Disagreements, d)
		}
	}
	slices.SortFunc(c.Disagreements, func(a, b Disagreement) int {
		ka, kb := sideKey(a.Flow), sideKey(b.Flow)
		return cmp.Or(cmp.Compare(ka.Namespace, kb.Namespace), cmp.Compare(ka.Direction, kb.Direction),
			cmp.Compare(ka.PeerNamespace, kb.PeerNamespace), cmp.Compare(a.Flow.Src.Name, b.Flow.Src.Name),
			cmp.Compare(a.Flow.Dst.Name, b.Flow.Dst.Name), cmp.Compare(ka.Port, kb.Port),
			cmp.Compare(ka.Protocol, kb.Protocol), a.Flow.Start.Compare(b.Flow.Start))
	})
	return c
}
