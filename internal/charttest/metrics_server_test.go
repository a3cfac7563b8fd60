package charttest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// Every query of the dashboard and the alerts parses with Prometheus' own
// PromQL parser, and names only metrics the daemon exports: the real
// daemon runs against the test API server and its /metrics is read. The
// dashboard also shows every calico_pni_ metric the daemon exports.
func TestMonitoringQueriesUseExportedMetrics(t *testing.T) {
	e := testbed.Need(t, env)
	bin := calicoPNIBin(t)
	queries := monitoringQueries(t)
	loadFixture(t, e)
	exported := daemonMetrics(t, e, bin)

	used := map[string]bool{}
	for _, q := range queries {
		expr, err := promQL.ParseExpr(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s reads no metric: %s", q.where, q.expr)
		}
		for _, name := range names {
			used[name] = true
			if !exported[name] && !seriesWithStagedFlows[name] {
				t.Errorf("%s reads %s, which calico-pni does not export", q.where, name)
			}
		}
	}
	for name := range exported {
		if !strings.HasPrefix(name, "calico_pni_") || used[name] {
			continue
		}
		if base, ok := histogramOf(name); !ok || !used[base+"_bucket"] {
			t.Errorf("calico-pni exports %s, which neither the dashboard nor the alerts read", name)
		}
	}
}

// seriesWithStagedFlows are the metrics that have series only while a
// staged project's flow logs are read, which the daemon run here (Calico
// 3.28, flow logs off) has none of; controller/flows_server_test.go reads
// them from a daemon that has.
var seriesWithStagedFlows = map[string]bool{"calico_pni_pending_denied_flows": true}

// histogramOf returns the histogram a _sum or _count series belongs to.
func histogramOf(name string) (string, bool) {
	for _, suffix := range []string{"_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base, true
		}
	}
	return "", false
}

// daemonMetrics runs `calico-pni run` against the test API server (dry
// run, no leader election: it writes nothing to the cluster the other
// tests share), waits for its first complete pass, and returns the names of the
// series its /metrics exposes, a histogram's _bucket, _sum and _count
// included.
func daemonMetrics(t *testing.T, e *testbed.Env, bin string) map[string]bool {
	t.Helper()
	kubeconfig, err := e.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := start(t, bin, "run", "--kubeconfig", kubeconfig, "--dry-run", "--leader-elect=false",
		"--http-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-format", "text", "--pod-namespace", "default")
	// /metrics once a pass has completed: the Calico API and the namespace
	// states are set by the first pass. The scrape that first shows the
	// pass may have read the other metrics before the pass set them (the
	// registry reads each metric on its own, not as one snapshot), so
	// the names come from the scrape after it.
	var families map[string]*dto.MetricFamily
	scrape := func() error {
		select {
		case <-p.done:
			t.Fatalf("calico-pni run exited: %v", p.err)
		default:
		}
		code, body, err := httpGet(base + "/metrics")
		if err != nil || code != 200 {
			return fmt.Errorf("/metrics: %d %v", code, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if families, err = parser.TextToMetricFamilies(strings.NewReader(body)); err != nil {
			t.Fatalf("/metrics is not Prometheus' text format: %v", err)
		}
		return nil
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		if err := scrape(); err != nil {
			return err
		}
		for _, m := range families["calico_pni_passes_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" && m.GetCounter().GetValue() > 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no pass has completed yet")
	})
	if err := scrape(); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue // declared, but no series to read
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	if err := p.stop(t); err != nil {
		t.Errorf("calico-pni run did not stop cleanly: %v", err)
	}
	return names
}
