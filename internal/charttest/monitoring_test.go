package charttest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// withMonitoring is what turns the dashboard and the alerts on: the
// ServiceMonitor, whose metrics they read.
var withMonitoring = []string{"--set", "serviceMonitor.enabled=true"}

// promQL is Prometheus' own PromQL parser with its default options, as a
// Prometheus server without feature flags parses queries.
var promQL = parser.NewParser(parser.Options{})

// query is one PromQL expression of the dashboard or the alerts.
type query struct {
	where string // the panel or alert, for messages
	expr  string
}

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// renderedDashboard returns the dashboard of the rendered ConfigMap.
func renderedDashboard(t *testing.T, objects []*unstructured.Unstructured) (dashboard, *unstructured.Unstructured) {
	t.Helper()
	cm := find(t, objects, "ConfigMap", release+"-dashboard")
	data, _, _ := unstructured.NestedString(cm.Object, "data", "calico-pni.json")
	var d dashboard
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	return d, cm
}

// renderedRules parses the rendered PrometheusRule's spec, which is a
// Prometheus rule file, with Prometheus' own rule-file parser: unknown
// fields, bad durations, expressions that do not parse and annotation
// templates that do not parse are all errors there.
func renderedRules(t *testing.T, objects []*unstructured.Unstructured) *rulefmt.RuleGroups {
	t.Helper()
	rule := find(t, objects, "PrometheusRule", release)
	if rule.GetAPIVersion() != "monitoring.coreos.com/v1" || rule.GetNamespace() != namespace {
		t.Errorf("PrometheusRule %s/%s has apiVersion %s", rule.GetNamespace(), rule.GetName(), rule.GetAPIVersion())
	}
	spec, ok := rule.Object["spec"].(map[string]any)
	if !ok {
		t.Fatal("the PrometheusRule has no spec")
	}
	file, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(file, false, model.UTF8Validation, promQL, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("Prometheus refuses the rules: %v", err)
	}
	if len(errs) > 0 {
		t.Fatalf("rule file:\n%s", file)
	}
	return groups
}

// monitoringQueries returns every query of the dashboard's panels and of
// the alerts, with the chart's defaults and the ServiceMonitor on.
func monitoringQueries(t *testing.T) []query {
	t.Helper()
	objects := render(t, withMonitoring...)
	d, _ := renderedDashboard(t, objects)
	var out []query
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			out = append(out, query{"panel " + p.Title, target.Expr})
		}
	}
	for _, g := range renderedRules(t, objects).Groups {
		for _, r := range g.Rules {
			out = append(out, query{"alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// metricNames returns the metric names a PromQL expression reads.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

// The dashboard and the alerts come with the ServiceMonitor, each can be
// turned off, and the dashboard lands where Rancher monitoring's Grafana
// looks, or where the values say.
func TestMonitoringObjects(t *testing.T) {
	count := func(objects []*unstructured.Unstructured) (dashboards, rules int) {
		for _, o := range objects {
			switch {
			case o.GetKind() == "ConfigMap" && o.GetName() == release+"-dashboard":
				dashboards++
			case o.GetKind() == "PrometheusRule":
				rules++
			}
		}
		return dashboards, rules
	}
	tests := []struct {
		flags             []string
		dashboards, rules int
	}{
		{nil, 0, 0},
		{withMonitoring, 1, 1},
		{append([]string{"--set", "grafanaDashboard.enabled=false"}, withMonitoring...), 0, 1},
		{append([]string{"--set", "prometheusRule.enabled=false"}, withMonitoring...), 1, 0},
		{[]string{"--set", "grafanaDashboard.enabled=true", "--set", "prometheusRule.enabled=true"}, 0, 0},
	}
	for _, tt := range tests {
		d, r := count(render(t, tt.flags...))
		if d != tt.dashboards || r != tt.rules {
			t.Errorf("%v: %d dashboards and %d PrometheusRules, want %d and %d", tt.flags, d, r, tt.dashboards, tt.rules)
		}
	}

	_, cm := renderedDashboard(t, render(t, withMonitoring...))
	if cm.GetNamespace() != "cattle-dashboards" || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("the dashboard is in namespace %q with labels %v, want cattle-dashboards and grafana_dashboard: \"1\"", cm.GetNamespace(), cm.GetLabels())
	}
	elsewhere := append([]string{"--set", "grafanaDashboard.namespace=monitoring", "--set", "grafanaDashboard.labels.grafana_dashboard=null", "--set", "grafanaDashboard.labels.dashboards=network"}, withMonitoring...)
	_, cm = renderedDashboard(t, render(t, elsewhere...))
	if cm.GetNamespace() != "monitoring" || cm.GetLabels()["dashboards"] != "network" || cm.GetLabels()["grafana_dashboard"] != "" {
		t.Errorf("with %v the dashboard is in namespace %q with labels %v", elsewhere, cm.GetNamespace(), cm.GetLabels())
	}

	// Rule labels and the runbook location are settable too.
	objects := render(t, append([]string{"--set", "prometheusRule.labels.role=alert-rules", "--set", "prometheusRule.alertLabels.team=network",
		"--set", "prometheusRule.runbookURL=https://docs.example.com/calico-pni/operations", "--set", "prometheusRule.slowPassSeconds=90"}, withMonitoring...)...)
	if got := find(t, objects, "PrometheusRule", release).GetLabels()["role"]; got != "alert-rules" {
		t.Errorf("PrometheusRule label role=%q, want alert-rules", got)
	}
	for _, g := range renderedRules(t, objects).Groups {
		for _, r := range g.Rules {
			if r.Labels["team"] != "network" || !strings.HasPrefix(r.Annotations["runbook_url"], "https://docs.example.com/calico-pni/operations#") {
				t.Errorf("alert %s: labels %v, runbook %s", r.Alert, r.Labels, r.Annotations["runbook_url"])
			}
			if r.Alert == "CalicoPNIFallingBehind" && !strings.HasSuffix(r.Expr, "> 90") {
				t.Errorf("alert %s ignores slowPassSeconds: %s", r.Alert, r.Expr)
			}
		}
	}
	for _, flags := range [][]string{
		{"--set", "prometheusRule.slowPassSeconds=600"},
		{"--set", "prometheusRule.runbookURL=https://example.com/ops.md#top"},
		{"--set", "grafanaDashboard.namespace=Cattle_Dashboards"},
	} {
		if _, err := renderErr(t, append(flags, withMonitoring...)...); err == nil {
			t.Errorf("%v: accepted", flags)
		}
	}
}

// The dashboard is one Grafana can load: a uid, a Prometheus data source
// chosen by a variable (Rancher monitoring's is called Prometheus, others
// differ), panels with unique ids and a query each.
func TestDashboard(t *testing.T) {
	d, _ := renderedDashboard(t, render(t, withMonitoring...))
	if d.UID != "calico-pni" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Name != "datasource" || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Errorf("the dashboard's first variable is %+v, want a Prometheus data source variable", d.Templating.List)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %s: data source %+v, want the variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %s has no query", p.Title)
		}
	}
	// What the dashboard is for.
	for _, want := range []string{"Namespaces by state", "Managed policies", "Pass duration", "Writes by kind and verb", "Errors by stage", "Leader", "Configuration reloads", "Exposed namespaces", "Policies refused by validation"} {
		if !slices.ContainsFunc(d.Panels, func(p panel) bool { return p.Title == want }) {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}
}

// Each alert is something a person on call can act on: a severity, a
// summary, a description and a runbook, whose section exists in
// docs/operations.md. The rules pass Prometheus' rule-file parser
// (renderedRules).
func TestAlertRules(t *testing.T) {
	groups := renderedRules(t, render(t, withMonitoring...))
	anchors := markdownAnchors(t, repo(t, "docs", "operations.md"))
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert", g.Name, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s", r.Alert, a)
				}
			}
			if time.Duration(r.For) < time.Minute {
				t.Errorf("alert %s fires after %s: a blip is not worth a page", r.Alert, time.Duration(r.For))
			}
			base, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
			if base != "https://github.com/calico-pni/calico-pni/blob/main/docs/operations.md" || anchor != strings.ToLower(r.Alert) {
				t.Errorf("alert %s: runbook_url %s, want docs/operations.md#%s", r.Alert, r.Annotations["runbook_url"], strings.ToLower(r.Alert))
			}
			if !anchors[anchor] {
				t.Errorf("alert %s: docs/operations.md has no section #%s", r.Alert, anchor)
			}
		}
	}
	want := []string{"CalicoPNINoLeader", "CalicoPNIPassesFailing", "CalicoPNINamespacesInError", "CalicoPNIPoliciesInvalid", "CalicoPNINamespacesExposed", "CalicoPNIFallingBehind"}
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown file: lower case, punctuation dropped, spaces as hyphens.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if heading, ok := strings.CutPrefix(line, "#"); ok {
			text := strings.TrimSpace(strings.TrimLeft(heading, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(text), ""), " ", "-")] = true
		}
	}
	return anchors
}

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
			if !exported[name] {
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
	// states are set by the first pass.
	var families map[string]*dto.MetricFamily
	testbed.Eventually(t, 60*time.Second, func() error {
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
		for _, m := range families["calico_pni_passes_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" && m.GetCounter().GetValue() > 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no pass has completed yet")
	})
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
