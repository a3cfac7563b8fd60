package charttest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// alertCase is a history of series, in the load format of Prometheus' own
// PromQL tests (one sample a minute), and whether an alert's expression
// returns anything after 40 minutes of it.
type alertCase struct {
	alert, name string
	series      []string
	fires       bool
}

// The labels Prometheus' scrape adds: two replicas, a the leader and b the
// standby, in the release namespace.
const (
	podA = `namespace="calico-pni-system",instance="10.42.0.5:8080",pod="calico-pni-a"`
	podB = `namespace="calico-pni-system",instance="10.42.1.7:8080",pod="calico-pni-b"`
)

func leaders(a, b string) []string {
	return []string{"calico_pni_leader{" + podA + "} " + a, "calico_pni_leader{" + podB + "} " + b}
}

var alertCases = []alertCase{
	{"CalicoPNINoLeader", "a leads", leaders("1x40", "0x40"), false},
	{"CalicoPNINoLeader", "neither leads", leaders("0x40", "0x40"), true},
	{"CalicoPNINoLeader", "nothing scraped", []string{`up{job="other"} 1x40`}, true},
	{"CalicoPNINoLeader", "another install leads", []string{`calico_pni_leader{namespace="elsewhere",instance="x"} 1x40`}, true},

	{"CalicoPNIPassesFailing", "a refresh fails now and then", append(leaders("1x40", "0x40"),
		`calico_pni_passes_total{`+podA+`,kind="event",result="ok"} 0+3x40`,
		`calico_pni_passes_total{`+podA+`,kind="refresh",result="error"} 0+0x20 1+0x20`), false},
	{"CalicoPNIPassesFailing", "every retry fails", append(leaders("1x40", "0x40"),
		`calico_pni_passes_total{`+podA+`,kind="event",result="ok"} 0+1x10 10+0x30`,
		`calico_pni_passes_total{`+podA+`,kind="event",result="error"} 0+0x10 0+2x30`), true},
	{"CalicoPNIPassesFailing", "no passes at all", append(leaders("1x40", "0x40"),
		`calico_pni_passes_total{`+podA+`,kind="event",result="ok"} 5x40`,
		`calico_pni_passes_total{`+podA+`,kind="event",result="error"} 0x40`), false},

	{"CalicoPNINamespacesInError", "only the standby's stale gauge", append(leaders("1x40", "0x40"),
		`calico_pni_namespaces{`+podA+`,state="error"} 0x40`,
		`calico_pni_namespaces{`+podB+`,state="error"} 3x40`), false},
	{"CalicoPNINamespacesInError", "the leader reports two", append(leaders("1x40", "0x40"),
		`calico_pni_namespaces{`+podA+`,state="error"} 2x40`,
		`calico_pni_namespaces{`+podA+`,state="isolated"} 50x40`,
		`calico_pni_namespaces{`+podB+`,state="error"} 0x40`), true},

	{"CalicoPNIPoliciesInvalid", "none", append(leaders("1x40", "0x40"),
		`calico_pni_invalid_policies{`+podA+`} 0x40`, `calico_pni_invalid_policies{`+podB+`} 1x40`), false},
	{"CalicoPNIPoliciesInvalid", "one", append(leaders("0x40", "1x40"),
		`calico_pni_invalid_policies{`+podA+`} 0x40`, `calico_pni_invalid_policies{`+podB+`} 1x40`), true},

	{"CalicoPNINamespacesExposed", "none", append(leaders("1x40", "0x40"),
		`calico_pni_exposed_namespaces{`+podA+`} 0x40`), false},
	{"CalicoPNINamespacesExposed", "three", append(leaders("1x40", "0x40"),
		`calico_pni_exposed_namespaces{`+podA+`} 3x40`), true},

	// Bucket bounds of calico_pni_pass_duration_seconds: 0.001 * 2^n.
	{"CalicoPNIFallingBehind", "passes of tens of milliseconds", append(leaders("1x40", "0x40"), passes(map[string]string{
		"0.032": "0+10x40", "0.064": "0+20x40", "65.536": "0+20x40", "131.072": "0+20x40", "+Inf": "0+20x40"})...), false},
	{"CalicoPNIFallingBehind", "every pass takes over a minute", append(leaders("1x40", "0x40"), passes(map[string]string{
		"0.032": "0x40", "0.064": "0x40", "65.536": "0x40", "131.072": "0+2x40", "+Inf": "0+2x40"})...), true},
}

// The flow-log alerts come with flows.enabled.
var flowAlertCases = []alertCase{
	{"CalicoPNIFlowEvidenceUnavailable", "flows arrive", append(leaders("1x40", "0x40"),
		`calico_pni_flow_evidence_available{`+podA+`} 1x40`, `calico_pni_flow_evidence_available{`+podB+`} 0x40`), false},
	{"CalicoPNIFlowEvidenceUnavailable", "Goldmane unreachable at the leader", append(leaders("1x40", "0x40"),
		`calico_pni_flow_evidence_available{`+podA+`} 0x40`, `calico_pni_flow_evidence_available{`+podB+`} 1x40`), true},

	{"CalicoPNIPredictionDisagrees", "none for an hour", append(leaders("1x40", "0x40"),
		`calico_pni_prediction_disagreements_total{`+podA+`} 0+0x40`), false},
	{"CalicoPNIPredictionDisagrees", "two in the last hour", append(leaders("1x40", "0x40"),
		`calico_pni_prediction_disagreements_total{`+podA+`} 0+0x30 1+0x5 2+0x5`), true},
}

// withFlows renders the alerts and the evidence of flow logs.
var withFlows = append(append([]string{}, withMonitoring...), "--set", "config.flows.enabled=true")

func passes(buckets map[string]string) []string {
	var out []string
	for le, values := range buckets {
		out = append(out, `calico_pni_pass_duration_seconds_bucket{`+podA+`,le="`+le+`"} `+values)
	}
	return out
}

// The alerts fire when they should and stay quiet otherwise, evaluated by
// Prometheus' own PromQL engine on series shaped like the daemon's, as
// Prometheus scrapes them: two replicas, gauges kept by the standby after it
// lost the lease, counters and a histogram that grow by the minute.
func TestAlertsFireWhenTheyShould(t *testing.T) {
	groups := renderedRules(t, render(t, withFlows...))
	exprs := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	engine := promqltest.NewTestEngine(t, false, 0, 1_000_000)
	covered := map[string]map[bool]bool{}
	for _, c := range append(slices.Clone(alertCases), flowAlertCases...) {
		expr, ok := exprs[c.alert]
		if !ok {
			t.Errorf("no alert %s", c.alert)
			continue
		}
		if covered[c.alert] == nil {
			covered[c.alert] = map[bool]bool{}
		}
		covered[c.alert][c.fires] = true
		storage := promqltest.LoadedStorage(t, "load 1m\n  "+strings.Join(c.series, "\n  "))
		q, err := engine.NewInstantQuery(context.Background(), storage, nil, expr, time.Unix(0, 0).Add(40*time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", c.alert, err)
		}
		res := q.Exec(context.Background())
		if res.Err != nil {
			t.Fatalf("%s, %s: %v", c.alert, c.name, res.Err)
		}
		vector, err := res.Vector()
		if err != nil {
			t.Fatalf("%s, %s: %v", c.alert, c.name, err)
		}
		if fired := len(vector) > 0; fired != c.fires {
			t.Errorf("%s, %s: fires %t (%v), want %t\n%s", c.alert, c.name, fired, vector, c.fires, expr)
		}
		q.Close()
		if err := storage.Close(); err != nil {
			t.Error(err)
		}
	}
	for alert := range exprs {
		if !covered[alert][true] || !covered[alert][false] {
			t.Errorf("alert %s needs a case where it fires and one where it does not", alert)
		}
	}
}
