package controller

import (
	"fmt"
	"maps"
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
	nodes      []evaluator.Node
	// family is the IP family of pod-to-pod flows: 4 unless every node
	// address is IPv6.
	family  int
	version calico.Version
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
	in.family = 6
	for _, n := range state.Snap.Nodes {
		// Node addresses are allocated: a pod whose address is not
		// known is none of them.
		in.nodes = append(in.nodes, evaluator.Node{Name: n.Name, Addresses: n.Addresses, HostAddresses: n.HostAddresses})
		for _, a := range append(n.Addresses, n.HostAddresses...) {
			if a.Is4() {
				in.family = 4
			}
		}
	}
	if len(in.nodes) == 0 {
		in.family = 4
	}
	c.prediction.Store(in)
}

// flowPredictor evaluates observed flows with the policies of a
// predictionInput. Each pod of a flow is evaluated as Goldmane describes
// it: its namespace and the labels its pods share, with the labels
// Calico adds (its namespace's profile, projectcalico.org/namespace and
// /orchestrator). Its address and service account are not in the flow
// log: a rule on addresses the cluster gave out (its nodes') does not
// match it, a wider one cannot be decided, and selectors on its service
// account see none. Flows with an end that is not a pod (a host, a
// network set, an address outside the cluster) are left unpredicted:
// the flow log carries neither their addresses nor their labels.
type flowPredictor struct {
	ix     *evaluator.Index
	family int
}

func newPredictor(in *predictionInput) *flowPredictor {
	cl := &evaluator.Cluster{Namespaces: in.namespaces, Nodes: in.nodes, Tiers: in.tiers, CalicoVersion: in.version}
	for _, p := range in.policies {
		cl.Policies = append(cl.Policies, *p)
	}
	return &flowPredictor{ix: evaluator.NewIndex(cl), family: in.family}
}

// endpoint is the evaluator's endpoint for one end of a flow: a pod of
// its namespace with its labels and an unknown address.
func (fp *flowPredictor) endpoint(e flows.Endpoint) *evaluator.Endpoint {
	ep := fp.ix.Placeholder(e.Namespace)
	labels := make(map[string]string, len(ep.Labels)+len(e.Labels))
	for k, v := range e.Labels {
		// Felix drops a pod's own labels with the profiles' prefixes
		// (evaluator.endpointLabels).
		if !strings.HasPrefix(k, evaluator.NamespaceLabelPrefix) && !strings.HasPrefix(k, evaluator.ServiceAccountLabelPrefix) {
			labels[k] = v
		}
	}
	maps.Copy(labels, ep.Labels)
	ep.Labels, ep.Name, ep.Placeholder, ep.Family = labels, e.Name, false, fp.family
	return ep
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
	return fp.ix.Evaluate(fp.endpoint(f.Src), fp.endpoint(f.Dst), f.Protocol, uint16(f.Port)), true
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
	fp := newPredictor(in)
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
	{
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
