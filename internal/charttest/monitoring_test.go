package charttest

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
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
	objects := render(t, withFlows...)
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
	for _, want := range []string{"Namespaces by state", "Managed policies", "Pass duration", "Writes by kind and verb", "Errors by stage", "Leader", "Configuration reloads", "Exposed namespaces", "Policies refused by validation", "Pending denied flows by staged project", "Flow evidence", "Prediction disagreements"} {
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
	want := []string{"CalicoPNINoLeader", "CalicoPNIPassesFailing", "CalicoPNINamespacesInError", "CalicoPNIPoliciesInvalid", "CalicoPNINamespacesExposed", "CalicoPNIFallingBehind"}
	checkAlertRules(t, withMonitoring, want)
	// Reading flow logs adds their alerts.
	checkAlertRules(t, withFlows, append(want, "CalicoPNIFlowEvidenceUnavailable", "CalicoPNIPredictionDisagrees"))
}

func checkAlertRules(t *testing.T, flags []string, want []string) {
	t.Helper()
	groups := renderedRules(t, render(t, flags...))
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
	if !slices.Equal(alerts, want) {
		t.Errorf("%v: alerts %v, want %v", flags, alerts, want)
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
