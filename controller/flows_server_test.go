package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/controller"
	"github.com/calico-pni/calico-pni/flows"
	pb "github.com/calico-pni/calico-pni/flows/goldmanepb"
	"github.com/calico-pni/calico-pni/flows/goldmanetest"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/metrics"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/promotions"
)

// The tests in this file run the controller against the test API server
// (Calico 3.30 with staged policies, the article fixture) and a Goldmane
// served over mutual TLS by flows/goldmanetest, with certificates the
// test makes. Project p-b6jcw (shop, ...) is enforced, p-mcb29 (redis,
// ingress-nginx) is staged.

// goldmane is a test Goldmane and the files of a client certificate it
// accepts.
type goldmane struct {
	*goldmanetest.Server
	tls config.FlowsTLS
}

func startGoldmane(t testing.TB) *goldmane {
	t.Helper()
	ca, err := goldmanetest.NewCA("tigera-ca-test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := goldmanetest.Start(goldmanetest.Options{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	client, err := ca.Client("calico-pni")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := config.FlowsTLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	for path, data := range map[string][]byte{files.CAFile: ca.PEM, files.CertFile: client.Cert, files.KeyFile: client.Key} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &goldmane{Server: srv, tls: files}
}

// flowsConfig enforces p-b6jcw, stages p-mcb29 and reads flows from g;
// the gate promotes after an hour's quiet.
func flowsConfig(address string, files config.FlowsTLS) *config.Config {
	cfg := config.Default()
	cfg.Projects.Enforce = []string{"p-b6jcw"}
	cfg.Projects.Stage = []string{"p-mcb29"}
	cfg.Flows.Enabled = true
	cfg.Flows.Address = address
	cfg.Flows.ServerName = "localhost"
	cfg.Flows.TLS = files
	cfg.Projects.Promote.Automatic = true
	cfg.Projects.Promote.QuietFor = config.Duration{Duration: time.Hour}
	return cfg
}

// gateClock is the promotion gate's clock: real time plus an offset the
// test moves.
type gateClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *gateClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *gateClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// flowEvidenceOptions makes the evidence loop quick, with the gate on
// clock and promotions recorded in ConfigMap default/calico-pni-promotions.
func flowEvidenceOptions(kube kubernetes.Interface, m *metrics.Metrics, clock *gateClock) func(*controller.Options) {
	return func(o *controller.Options) {
		o.Metrics = m
		o.EvidenceRefresh = 200 * time.Millisecond
		o.EvidencePoll = 50 * time.Millisecond
		o.FlowBackoff = flows.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
		o.GateClock = clock.now
		o.Promotions = &promotions.Record{Kube: kube, Namespace: "default", Name: promotions.DefaultName}
	}
}

// recordedFlow is one flow log entry in the shape Felix 3.30 reports
// (calico.md, "Flow logs: Goldmane"), between two pods, seen at reporter.
func recordedFlow(start time.Time, srcNS, dstNS string, port int64, reporter pb.Reporter, action pb.Action, enforced, pending []*pb.PolicyHit) *pb.Flow {
	return &pb.Flow{
		Key: &pb.FlowKey{
			SourceName: srcNS + "-app-", SourceNamespace: srcNS, SourceType: pb.EndpointType_WorkloadEndpoint,
			DestName: dstNS + "-app-", DestNamespace: dstNS, DestType: pb.EndpointType_WorkloadEndpoint,
			DestPort: port, Proto: "TCP", Reporter: reporter, Action: action,
			Policies: &pb.PolicyTrace{EnforcedPolicies: enforced, PendingPolicies: pending},
		},
		StartTime: start.Unix(), EndTime: start.Add(15 * time.Second).Unix(),
		SourceLabels: []string{"app=" + srcNS}, DestLabels: []string{"app=" + dstNS},
		NumConnectionsStarted: 1,
	}
}

func profileHit(ns string) *pb.PolicyHit {
	return &pb.PolicyHit{Kind: pb.PolicyKind_Profile, Name: "kns." + ns, Action: pb.Action_Allow}
}

// stagedWallDeny is the pending trace of a connection calico-pni's staged
// ingress wall would deny: the end of calico-pni's tier, charged to the
// staged wall (Calico 3.30's trace of a tier's default deny).
func stagedWallDeny() []*pb.PolicyHit {
	return []*pb.PolicyHit{{Kind: pb.PolicyKind_EndOfTier, Tier: config.TierName, Action: pb.Action_Deny, RuleIndex: -1,
		Trigger: &pb.PolicyHit{Kind: pb.PolicyKind_StagedGlobalNetworkPolicy, Name: policies.TierNamePrefix + "staged-deny-ingress", Tier: config.TierName}}}
}

// stagedProjectAllow is the pending trace of a connection within staged
// project p-mcb29: its staged project policy allows it.
func stagedProjectAllow() []*pb.PolicyHit {
	return []*pb.PolicyHit{{Kind: pb.PolicyKind_StagedGlobalNetworkPolicy, Name: policies.TierNamePrefix + "staged-project-p-mcb29", Tier: config.TierName, Action: pb.Action_Allow}}
}

// The table of flows the test Goldmane serves, each with what Calico's
// documented behaviour makes of it (calico.md: a pending deny is a flow
// Felix allowed whose pending trace ends in Deny; Felix's enforced
// verdict on an isolated namespace denies other projects' pods).
var evidenceTable = []struct {
	name string
	flow func(start time.Time) *pb.Flow
	// pendingDeny: counted against redis's staged walls.
	pendingDeny bool
}{
	{"shop -> redis:6379, allowed today, the staged wall would deny", func(s time.Time) *pb.Flow {
		return recordedFlow(s, "shop", "redis", 6379, pb.Reporter_Dst, pb.Action_Allow, []*pb.PolicyHit{profileHit("redis")}, stagedWallDeny())
	}, true},
	{"ingress-nginx -> redis:6379, same project: the staged project policy allows", func(s time.Time) *pb.Flow {
		return recordedFlow(s, "ingress-nginx", "redis", 6379, pb.Reporter_Dst, pb.Action_Allow, []*pb.PolicyHit{profileHit("redis")}, stagedProjectAllow())
	}, false},
	{"shop -> redis:22, denied already: enforcing changes nothing", func(s time.Time) *pb.Flow {
		return recordedFlow(s, "shop", "redis", 22, pb.Reporter_Dst, pb.Action_Deny, []*pb.PolicyHit{{Kind: pb.PolicyKind_NetworkPolicy, Namespace: "redis", Name: "deny-ssh", Tier: "default", Action: pb.Action_Deny}}, stagedWallDeny())
	}, false},
}

// Staged denies seen in Goldmane's flows appear in the staged
// namespace's status and the metric; a broken stream is reconnected and
// resumed without counting twice; a project quiet for quietFor on the
// gate's clock is promoted, recorded, and enforced; a flow of an enforced
// namespace whose verdict the evaluator predicts otherwise is reported.
func TestFlowEvidence(t *testing.T) {
	e := stagedEnv(t)
	g := startGoldmane(t)
	t0 := time.Now().Add(-10 * time.Minute).Truncate(15 * time.Second)
	denies := 0
	for i := range 3 {
		for _, row := range evidenceTable {
			g.Publish(row.flow(t0.Add(time.Duration(i) * 15 * time.Second)))
			if row.pendingDeny {
				denies++
			}
		}
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	clock := &gateClock{}
	cfg := flowsConfig(g.Address(), g.tls)
	r := start(t, e, cfg, flowEvidenceOptions(e.Kube, m, clock))
	r.waitReady(t)

	// The gate counts quiet time from when the evidence began: the
	// recorded denies are older and hold no project back (no LastDeny);
	// the project passes an hour later, rounded up to the hour.
	before := time.Now()
	wantRedis := &policies.Pending{Flows: "1+", Window: "24h", Peers: []policies.PendingPeer{{Direction: "ingress", Peer: "shop (p-b6jcw)", Ports: []string{"TCP 6379"}}}}
	wantNginx := &policies.Pending{Flows: "0", Window: "24h"}
	testbed.Eventually(t, wait, func() error {
		for ns, want := range map[string]*policies.Pending{"redis": wantRedis, "ingress-nginx": wantNginx} {
			st, _, err := readStatus(e, ns)
			if err != nil {
				return err
			}
			if st.State != policies.Staged || st.Pending == nil {
				return fmt.Errorf("%s: state %s, pending %+v; want staged with %+v", ns, st.State, st.Pending, want)
			}
			got := *st.Pending
			readyAt := got.ReadyAt
			got.ReadyAt = ""
			if !reflect.DeepEqual(&got, want) {
				return fmt.Errorf("%s: pending %+v; want %+v", ns, st.Pending, want)
			}
			if early, late := hourAfter(before), hourAfter(time.Now()); readyAt != early && readyAt != late {
				return fmt.Errorf("%s: readyAt %q, want %s or %s", ns, readyAt, early, late)
			}
		}
		return nil
	})
	// The metric follows at the same refresh, or the next one when the
	// first summary was made before the first pass labelled the
	// namespaces with their project.
	testbed.Eventually(t, wait, func() error {
		if n := testutil.CollectAndCount(m.PendingDeniedFlows); n != 1 {
			return fmt.Errorf("%d series of calico_pni_pending_denied_flows, want 1 (p-mcb29, the one staged project)", n)
		}
		if got := testutil.ToFloat64(m.PendingDeniedFlows.WithLabelValues("p-mcb29")); got != float64(denies) {
			return fmt.Errorf("calico_pni_pending_denied_flows{project=p-mcb29} = %v, want %d (the table's pending denies)", got, denies)
		}
		return nil
	})
	if got := testutil.ToFloat64(m.FlowEvidenceAvailable); got != 1 {
		t.Errorf("calico_pni_flow_evidence_available = %v, want 1", got)
	}
	st, _ := status(t, e, "shop")
	if st.Pending != nil {
		t.Errorf("shop is enforced; its status has pending denies %+v", st.Pending)
	}

	// A broken stream: the client reconnects and resumes; the flows sent
	// again are not counted twice, a new one is.
	opened, next := g.Streams()
	g.Stop()
	if err := g.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next:
	case <-time.After(wait):
		t.Fatalf("no new stream after Goldmane restarted (%d opened)", opened)
	}
	// A deny of the interval starting now, while the evidence holds,
	// holds p-mcb29 back: the status names it and its quiet time starts
	// at its end.
	fresh := evidenceTable[0].flow(time.Now())
	g.Publish(fresh)
	denies++
	testbed.Eventually(t, wait, func() error {
		if got := testutil.ToFloat64(m.PendingDeniedFlows.WithLabelValues("p-mcb29")); got != float64(denies) {
			return fmt.Errorf("pending denied flows of p-mcb29: %v, want %d", got, denies)
		}
		st, _, err := readStatus(e, "ingress-nginx")
		if err != nil {
			return err
		}
		if want := hourAfter(time.Unix(fresh.EndTime, 0)); st.Pending == nil || st.Pending.LastDeny != "ingress of redis from shop on TCP 6379" || st.Pending.ReadyAt != want {
			return fmt.Errorf("ingress-nginx: pending %+v; want the last deny of its project, ready at %s", st.Pending, want)
		}
		return nil
	})
	reqs := g.Requests()
	if last := reqs[len(reqs)-1]; last.GetStartTimeGte() <= 0 {
		t.Errorf("the stream after the reconnect asked for start %d, want a resume point (Unix seconds)", last.GetStartTimeGte())
	}

	// Half the quiet time on the gate's clock: not promoted yet.
	clock.advance(30 * time.Minute)
	waitRefreshes(t, r, 3)
	if ps, err := (promotions.Record{Kube: e.Kube, Namespace: "default", Name: promotions.DefaultName}).Load(context.Background()); err != nil || len(ps) != 0 {
		t.Errorf("after 30 minutes of quiet: promotions %v (%v), want none", ps, err)
	}
	// Past it: p-mcb29 is promoted, recorded and enforced.
	clock.advance(time.Hour)
	testbed.Eventually(t, wait, func() error {
		ps, err := (promotions.Record{Kube: e.Kube, Namespace: "default", Name: promotions.DefaultName}).Load(context.Background())
		if err != nil {
			return err
		}
		if _, ok := ps["p-mcb29"]; !ok || len(ps) != 1 {
			return fmt.Errorf("promotions %v, want p-mcb29", ps)
		}
		st, labels, err := readStatus(e, "redis")
		if err != nil {
			return err
		}
		if st.State != policies.Isolated || labels[policies.IsolatedLabel] != "true" || st.Pending != nil {
			return fmt.Errorf("redis after the promotion: %+v %v", st, labels)
		}
		return namespaceEvent(e, "redis", "Promoted")
	})
	if !strings.Contains(r.logs.String(), "promoting a staged project") {
		t.Errorf("no log line of the promotion")
	}
	if p, ok := r.c.Promoted()["p-mcb29"]; !ok || p.QuietFor != "1h0m0s" || !strings.HasPrefix(p.Evidence, "flow evidence from "+g.Address()) {
		t.Errorf("the controller's promotions: %+v", r.c.Promoted())
	}
	st, _ = status(t, e, "redis")
	if !strings.Contains(st.Reason, "without an unexpected pending deny (projects.promote)") {
		t.Errorf("redis's status does not say why it is enforced: %q", st.Reason)
	}
	// At the next refresh, the denies of p-mcb29 are pending no more.
	testbed.Eventually(t, wait, func() error {
		if n := testutil.CollectAndCount(m.PendingDeniedFlows); n != 0 {
			return fmt.Errorf("p-mcb29 is enforced, yet %d series of calico_pni_pending_denied_flows", n)
		}
		return nil
	})
}

// hourAfter is an hour after t, rounded up to the hour, as the status
// writes when a project passes the gate.
func hourAfter(t time.Time) string {
	at := t.UTC().Add(time.Hour)
	if h := at.Truncate(time.Hour); !h.Equal(at) {
		at = h.Add(time.Hour)
	}
	return at.Format(time.RFC3339)
}

// waitRefreshes waits until the evidence loop has summarised n more
// times (its log line "flow evidence").
func waitRefreshes(t *testing.T, r *running, n int) {
	t.Helper()
	from := strings.Count(r.logs.String(), `msg="flow evidence"`)
	testbed.Eventually(t, wait, func() error {
		if got := strings.Count(r.logs.String(), `msg="flow evidence"`) - from; got < n {
			return fmt.Errorf("%d refreshes of the flow evidence, want %d", got, n)
		}
		return nil
	})
}

// The table of flows of enforced namespaces that the evaluator's
// prediction is checked against, with the verdict Calico's documented
// behaviour gives (design.md: the walls of an isolated namespace deny
// other projects' pods and allow the project's own).
var predictionTable = []struct {
	name     string
	flow     func(start time.Time) *pb.Flow
	disagree bool
}{
	{"shop-batch -> shop:8080, same project, Felix allowed: agrees", func(s time.Time) *pb.Flow {
		return recordedFlow(s, "shop-batch", "shop", 8080, pb.Reporter_Dst, pb.Action_Allow, nil, nil)
	}, false},
	{"redis -> shop:8080, another project, Felix reports it allowed by shop's profile: the walls deny it, a disagreement", func(s time.Time) *pb.Flow {
		return recordedFlow(s, "redis", "shop", 8080, pb.Reporter_Dst, pb.Action_Allow, []*pb.PolicyHit{profileHit("shop")}, nil)
	}, true},
}

// Flows of enforced namespaces are compared with the evaluator's
// prediction: a disagreement is counted, logged with the explanation and
// announced by an event on the namespace, once.
func TestPredictionAgainstObservedFlows(t *testing.T) {
	e := stagedEnv(t)
	g := startGoldmane(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	cfg := flowsConfig(g.Address(), g.tls)
	cfg.Projects.Promote.Automatic = false
	r := start(t, e, cfg, flowEvidenceOptions(e.Kube, m, &gateClock{}))
	r.waitReady(t)
	// Flows arrive after a pass has read the policies.
	testbed.Eventually(t, wait, func() error { return converged(e, cfg, v130staged) })
	now := time.Now().Truncate(15 * time.Second)
	want := 0
	for i := range 2 {
		for _, row := range predictionTable {
			g.Publish(row.flow(now.Add(time.Duration(i) * 15 * time.Second)))
			if row.disagree && i == 0 {
				want++
			}
		}
	}
	testbed.Eventually(t, wait, func() error { return namespaceEvent(e, "shop", "PredictionDisagrees") })
	waitRefreshes(t, r, 3)
	if got := testutil.ToFloat64(m.PredictionDisagreements); got != float64(want) {
		t.Errorf("calico_pni_prediction_disagreements_total = %v, want %d (one per disagreeing flow of the table, not per interval)", got, want)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "prediction disagrees with an observed flow") || !strings.Contains(logs, "redis/redis-app- -> shop/shop-app- TCP 8080") || !strings.Contains(logs, "explain=") {
		t.Errorf("no log line with the disagreeing flow and its explanation:\n%s", grepLines(logs, "prediction"))
	}
	if strings.Contains(logs, "shop-batch/shop-batch-app- -> shop") && strings.Contains(grepLines(logs, "prediction disagrees"), "shop-batch") {
		t.Errorf("the agreeing flow was reported as a disagreement")
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Without Goldmane (unreachable), every staged namespace's status says
// that flow evidence is unavailable and why, the metric says 0, and the
// passes complete; with flow logs switched off, the status says so.
func TestFlowEvidenceUnavailable(t *testing.T) {
	e := stagedEnv(t)
	g := startGoldmane(t)
	g.Stop()
	m := metrics.New(prometheus.NewRegistry())
	cfg := flowsConfig(g.Address(), g.tls)
	r := start(t, e, cfg, flowEvidenceOptions(e.Kube, m, &gateClock{}))
	r.waitReady(t)
	testbed.Eventually(t, wait, func() error {
		if err := converged(e, cfg, v130staged); err != nil {
			return err
		}
		for _, ns := range []string{"redis", "ingress-nginx"} {
			st, _, err := readStatus(e, ns)
			if err != nil {
				return err
			}
			if st.Pending == nil || !strings.Contains(st.Pending.Unavailable, "flow evidence unavailable: no flow logs from Goldmane at "+g.Address()) || st.Pending.Flows != "" {
				return fmt.Errorf("%s: pending %+v", ns, st.Pending)
			}
		}
		return nil
	})
	if got := testutil.ToFloat64(m.FlowEvidenceAvailable); got != 0 {
		t.Errorf("calico_pni_flow_evidence_available = %v, want 0", got)
	}
	if n := testutil.CollectAndCount(m.PendingDeniedFlows); n != 0 {
		t.Errorf("%d series of calico_pni_pending_denied_flows without evidence, want none", n)
	}
	if err := r.c.LastPass().Err; err != nil {
		t.Errorf("the last pass failed: %v", err)
	}

	off := flowsConfig(g.Address(), g.tls)
	off.Flows.Enabled = false
	off.Projects.Promote.Automatic = false
	r.c.SetConfig(off)
	testbed.Eventually(t, wait, func() error {
		st, _, err := readStatus(e, "redis")
		if err != nil {
			return err
		}
		if st.Pending == nil || !strings.Contains(st.Pending.Unavailable, "does not read Calico's flow logs (flows.enabled: false") {
			return fmt.Errorf("redis: pending %+v", st.Pending)
		}
		return nil
	})

	// Switched on again, towards a Goldmane that answers: a new client
	// reads it, and the pending denies replace the reason.
	live := startGoldmane(t)
	live.Publish(evidenceTable[0].flow(time.Now().Add(-time.Minute).Truncate(15 * time.Second)))
	on := flowsConfig(live.Address(), live.tls)
	on.Projects.Promote.Automatic = false
	r.c.SetConfig(on)
	testbed.Eventually(t, wait, func() error {
		st, _, err := readStatus(e, "redis")
		if err != nil {
			return err
		}
		if st.Pending == nil || st.Pending.Unavailable != "" || st.Pending.Flows != "1+" {
			return fmt.Errorf("redis: pending %+v, want the live Goldmane's deny", st.Pending)
		}
		return nil
	})
	if got := testutil.ToFloat64(m.FlowEvidenceAvailable); got != 1 {
		t.Errorf("calico_pni_flow_evidence_available = %v after switching to a live Goldmane, want 1", got)
	}
}
