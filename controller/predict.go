package controller

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/flows"
)

// predictionInput is what the last pass read of the cluster's enforced
// policies, for predicting the verdicts of observed flows: every enforced
// policy (calico-pni's and the users'), the tiers and the namespaces'
// labels. The evidence loop reads it; the pass replaces it whole.
type predictionInput struct {
	policies   []*evaluator.Policy
	tiers      []evaluator.Tier
	namespaces []evaluator.Namespace
	version    calico.Version
}

// Bounds of the comparison of predictions with observed flows.
const (
	// maxDisagreementEvents is how many disagreements one refresh
	// announces by an event and a log line; the metric counts them all.
	maxDisagreementEvents = 5
	// maxReported bounds the record of disagreements announced already.
	maxReported = 10_000
)

// capturePrediction keeps the policies the pass read for the evidence
// loop. It runs only while flow logs are read.
func (c *Controller) capturePrediction(w *policyWatch, state *cluster.State, seen map[string]bool) {
	if c.evidence.Load() == nil {
		c.prediction.Store(nil)
		return
	}
	in := &predictionInput{version: w.api.Version}
	for _, u := range w.objects("Tier") {
		if m := c.model("Tier", u, seen); m.tier != nil {
			in.tiers = append(in.tiers, *m.tier)
		}
	}
	for _, kind := range []string{"GlobalNetworkPolicy", "NetworkPolicy"} {
		for _, u := range w.objects(kind) {
			// knp.default.* are Kubernetes NetworkPolicies as the Calico
			// API server lists them; they are read from Kubernetes below.
			if !strings.HasPrefix(u.GetName(), "knp.") {
				in.policies = append(in.policies, c.model(kind, u, seen).policies...)
			}
		}
	}
	for _, np := range typed[networkingv1.NetworkPolicy](c.networkPolicies.GetStore().List()) {
		in.policies = append(in.policies, c.kubernetesModel(np, seen).policies...)
	}
	for _, ns := range state.Snap.Namespaces {
		in.namespaces = append(in.namespaces, evaluator.Namespace{Name: ns.Name, Labels: ns.Labels})
	}
	c.prediction.Store(in)
}

// flowPredictor evaluates observed flows with the policies of a
// predictionInput. Each pod of a flow is evaluated as Goldmane describes
// it: its namespace, its owner's name and the labels its pods share. Its
// addresses are not in the flow log, so a rule on addresses cannot be
// decided and the flow is left unpredicted; so are flows with an end that
// is not a pod (a host, a network set, an address outside the cluster),
// whose selectors and addresses the flow log does not carry.
type flowPredictor struct {
	ix    *evaluator.Index
	names map[string]string
}

func newPredictor(in *predictionInput, observed []flows.Flow) *flowPredictor {
	cl := &evaluator.Cluster{Namespaces: in.namespaces, Tiers: in.tiers, CalicoVersion: in.version}
	for _, p := range in.policies {
		cl.Policies = append(cl.Policies, *p)
	}
	fp := &flowPredictor{names: map[string]string{}}
	for _, f := range observed {
		if isPod(f.Src) && isPod(f.Dst) {
			for _, e := range []flows.Endpoint{f.Src, f.Dst} {
				id := endpointID(e)
				if _, ok := fp.names[id]; !ok {
					n := fmt.Sprintf("%s%d", e.Name, len(fp.names))
					fp.names[id] = n
					cl.Pods = append(cl.Pods, evaluator.Pod{Namespace: e.Namespace, Name: n, Labels: e.Labels, Node: "flow-log"})
				}
			}
		}
	}
	fp.ix = evaluator.NewIndex(cl)
	return fp
}

// predict is a flows.Predictor.
func (fp *flowPredictor) predict(f flows.Flow) (string, string, bool) {
	res, ok := fp.evaluate(f)
	if !ok {
		return "", "", false
	}
	side := res.Ingress
	if f.Reporter == flows.ReporterSrc {
		side = res.Egress
	}
	if side.Verdict != evaluator.Allow && side.Verdict != evaluator.Deny {
		return "", "", false
	}
	policy := ""
	if len(side.Hits) > 0 {
		policy = flows.PolicyString(flowHit(side.Hits[len(side.Hits)-1]))
	}
	return string(side.Verdict), policy, true
}

// evaluate evaluates a flow between two pods as the evaluator would a
// connection between them.
func (fp *flowPredictor) evaluate(f flows.Flow) (evaluator.Result, bool) {
	if !isPod(f.Src) || !isPod(f.Dst) || f.Port <= 0 || f.Port > 65535 {
		return evaluator.Result{}, false
	}
	src, err := fp.ix.PodEndpoint(f.Src.Namespace, fp.names[endpointID(f.Src)])
	if err != nil {
		return evaluator.Result{}, false
	}
	dst, err := fp.ix.PodEndpoint(f.Dst.Namespace, fp.names[endpointID(f.Dst)])
	if err != nil {
		return evaluator.Result{}, false
	}
	return fp.ix.Evaluate(src, dst, f.Protocol, uint16(f.Port)), true
}

func endpointID(e flows.Endpoint) string {
	return e.Namespace + "/" + e.Name + "/" + labelText(e.Labels)
}

func isPod(e flows.Endpoint) bool { return e.Type == flows.WorkloadEndpoint && e.Namespace != "" }

// flowHit is an evaluator hit as the flow log names it.
func flowHit(h evaluator.Hit) flows.Hit {
	out := flows.Hit{Kind: h.Kind, Namespace: h.Namespace, Name: h.Name, Tier: h.Tier,
		Action: strings.ToLower(string(h.Action)), PolicyIndex: h.PolicyIndex, RuleIndex: h.RuleIndex}
	if h.Trigger != nil {
		t := flowHit(*h.Trigger)
		out.Trigger = &t
	}
	return out
}

func labelText(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + labels[k] + ",")
	}
	return b.String()
}

// comparePredictions compares the verdicts of the flows observed since
// the last comparison, in enforced namespaces, with what the evaluator
// predicts from the policies in place. Each new disagreement is counted;
// the first few of a refresh are announced by an event on the namespace
// and a log line with the evaluator's explanation.
func (c *Controller) comparePredictions(ev *Evidence, nss namespaceFacts) {
	in := c.prediction.Load()
	if in == nil {
		return
	}
	l := &c.loop
	var fresh []flows.Flow
	newest := l.lastCompared
	for _, f := range ev.Store.Recent() {
		if f.End.After(l.lastCompared) {
			fresh = append(fresh, f)
			if f.End.After(newest) {
				newest = f.End
			}
		}
	}
	l.lastCompared = newest
	if len(fresh) == 0 {
		return
	}
	enforced := func(ns string) bool { return nss.isolated[ns] && !nss.staged[ns] }
	fp := newPredictor(in, fresh)
	cmp := flows.Compare(fresh, fp.predict, enforced)
	announced := 0
	for _, d := range cmp.Disagreements {
		id := disagreementID(d)
		if l.reported[id] {
			continue
		}
		if l.reported == nil || len(l.reported) >= maxReported {
			l.reported = map[string]bool{}
		}
		l.reported[id] = true
		c.o.Metrics.PredictionDisagreements.Inc()
		if announced < maxDisagreementEvents {
			announced++
			c.announceDisagreement(d, fp)
		}
	}
	if cmp.Compared > 0 || len(cmp.Disagreements) > 0 {
		c.log.Debug("predictions compared with observed flows", "compared", cmp.Compared, "agreed", cmp.Agreed,
			"unpredicted", cmp.Unpredicted, "disagreements", len(cmp.Disagreements))
	}
}

// disagreementID names a disagreement without its interval: the same
// flow disagreeing again in the next interval is not news.
func disagreementID(d flows.Disagreement) string {
	f := d.Flow
	return strings.Join([]string{f.Src.Namespace, f.Src.Name, f.Dst.Namespace, f.Dst.Name, f.Protocol, fmt.Sprint(f.Port),
		string(f.Reporter), d.Observed.Action, d.Observed.Policy, d.Predicted.Action, d.Predicted.Policy}, "|")
}

// describeFlow names a flow for people: "shop/web-7c9f5d- -> data/db- TCP 5432".
func describeFlow(f flows.Flow) string {
	return fmt.Sprintf("%s/%s -> %s/%s %s %d", f.Src.Namespace, f.Src.Name, f.Dst.Namespace, f.Dst.Name, f.Protocol, f.Port)
}

func (c *Controller) announceDisagreement(d flows.Disagreement, fp *flowPredictor) {
	local, _, dir := d.Flow.Side()
	msg := fmt.Sprintf("calico-pni's evaluator predicted %s (%s) for %s of %s, Calico did %s (%s): calico-pni's view of Calico's policies is wrong here; please report it with the output of calico-pni explain",
		d.Predicted.Action, orNone(d.Predicted.Policy), dir, describeFlow(d.Flow), d.Observed.Action, orNone(d.Observed.Policy))
	explain := ""
	if res, ok := fp.evaluate(d.Flow); ok {
		explain = res.Reason
	}
	c.log.Warn("prediction disagrees with an observed flow", "flow", describeFlow(d.Flow), "reporter", string(d.Flow.Reporter),
		"observed", d.Observed.Action, "observedPolicy", d.Observed.Policy, "predicted", d.Predicted.Action,
		"predictedPolicy", d.Predicted.Policy, "explain", explain)
	if c.o.Recorder != nil {
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: local.Namespace}
		c.o.Recorder.Event(ref, corev1.EventTypeWarning, "PredictionDisagrees", msg)
	}
}

func orNone(policy string) string {
	if policy == "" {
		return "no policy named"
	}
	return policy
}
