// Package metrics holds the daemon's Prometheus metrics, all prefixed
// calico_pni_. The chart's dashboard and alerts read only these
// (internal/charttest checks both ways).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/plan"
	"github.com/calico-pni/calico-pni/policies"
)

// Metrics are the daemon's Prometheus metrics, all prefixed calico_pni_.
type Metrics struct {
	Passes          *prometheus.CounterVec
	PassDuration    prometheus.Histogram
	Writes          *prometheus.CounterVec
	Errors          *prometheus.CounterVec
	ManagedPolicies prometheus.Gauge
	Namespaces      *prometheus.GaugeVec
	APIMode         *prometheus.GaugeVec
	Leader          prometheus.Gauge
	ConfigReloads   *prometheus.CounterVec
	// InvalidPolicies counts the policies of the last pass that failed
	// validation: they are not written, and the namespaces that need them
	// are held as they are.
	InvalidPolicies prometheus.Gauge
	// ExposedNamespaces counts isolated namespaces into or out of which a
	// policy not written by calico-pni opens a wall (see the status's
	// exposures).
	ExposedNamespaces prometheus.Gauge
	// Settling is 1 while a pass waits for the dataplane to apply writes
	// the next step relies on; SettleWaits counts such waits.
	Settling    prometheus.Gauge
	SettleWaits prometheus.Counter
	// RancherIsolation counts the namespaces where Rancher's own project
	// network isolation has policies, beside calico-pni's walls.
	RancherIsolation prometheus.Gauge
	// PendingDeniedFlows counts, by staged project, the flows of the flow
	// window that calico-pni's staged walls would deny (series only while
	// flow logs are read).
	PendingDeniedFlows *prometheus.GaugeVec
	// FlowEvidenceAvailable is 1 while Calico's flow logs arrive without
	// a gap longer than flows.maxGap.
	FlowEvidenceAvailable prometheus.Gauge
	// PredictionDisagreements counts observed flows of enforced
	// namespaces whose verdict calico-pni's evaluator predicted otherwise.
	PredictionDisagreements prometheus.Counter
}

// New creates the metrics and registers them with reg (nil: not
// registered, for tests that need none).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_pni_passes_total",
			Help: "Reconcile passes, by kind (event: after a watch event; refresh: cron or start-up, reading everything from the API server) and result (ok, error).",
		}, []string{"kind", "result"}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calico_pni_pass_duration_seconds",
			Help:    "Duration of reconcile passes, writes included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_pni_writes_total",
			Help: "Writes to the API server, by verb (create, update, patch, delete) and kind.",
		}, []string{"verb", "kind"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_pni_errors_total",
			Help: "Errors, by stage (detect, list, write, config).",
		}, []string{"stage"}),
		ManagedPolicies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_managed_policies",
			Help: "Calico policies calico-pni manages after the last pass.",
		}),
		Namespaces: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "calico_pni_namespaces",
			Help: "Namespaces by state after the last pass (isolated, staged, exempt, open, error).",
		}, []string{"state"}),
		APIMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "calico_pni_api_mode",
			Help: "1 for the Calico API calico-pni writes (group, and the Calico version that decides names).",
		}, []string{"group", "calico_version"}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_leader",
			Help: "1 while this replica holds the leader lease and writes.",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_pni_config_reloads_total",
			Help: "Configuration reloads, by result (applied, rejected).",
		}, []string{"result"}),
		InvalidPolicies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_invalid_policies",
			Help: "Policies of the last pass that failed validation and were not written; the namespaces that need them are held as they are.",
		}),
		ExposedNamespaces: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_exposed_namespaces",
			Help: "Isolated namespaces into or out of which a policy not written by calico-pni lets other projects or outside sources, after the last pass.",
		}),
		Settling: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_settling",
			Help: "1 while a pass waits for Calico's dataplane to apply writes the next step of the transition relies on (--settle).",
		}),
		RancherIsolation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_rancher_isolation_namespaces",
			Help: "Namespaces where Rancher's own project network isolation (NetworkPolicies labelled cattle.io/creator: norman) also applies, after the last pass.",
		}),
		SettleWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_pni_settle_waits_total",
			Help: "Times a pass waited for Calico's dataplane between two steps of a transition.",
		}),
		PendingDeniedFlows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "calico_pni_pending_denied_flows",
			Help: "Flow log entries of the flow window (flows.window) that Calico allowed and calico-pni's staged walls would deny, by staged project (\"none\": namespaces isolated on their own). Only while Calico's flow logs are read (flows.enabled).",
		}, []string{"project"}),
		FlowEvidenceAvailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_pni_flow_evidence_available",
			Help: "1 while Calico's flow logs arrive from Goldmane without a gap longer than flows.maxGap; 0 otherwise, and when they are not read.",
		}),
		PredictionDisagreements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_pni_prediction_disagreements_total",
			Help: "Observed flows of enforced namespaces whose verdict or deciding policy calico-pni's evaluator predicted otherwise than Calico's enforced trace.",
		}),
	}
	// Every series exists from the start, at zero, so that dashboards and
	// alerts see it before the first event of its kind.
	for _, kind := range []string{"event", "refresh"} {
		for _, result := range []string{"ok", "error"} {
			m.Passes.WithLabelValues(kind, result)
		}
	}
	for _, verb := range []string{plan.Create, plan.Update, plan.Delete} {
		m.Writes.WithLabelValues(verb, "GlobalNetworkPolicy")
	}
	m.Writes.WithLabelValues(plan.Patch, "Namespace")
	for _, stage := range []string{"detect", "list", "write", "config"} {
		m.Errors.WithLabelValues(stage)
	}
	for _, result := range []string{"applied", "rejected"} {
		m.ConfigReloads.WithLabelValues(result)
	}
	if reg != nil {
		reg.MustRegister(m.Passes, m.PassDuration, m.Writes, m.Errors, m.ManagedPolicies,
			m.Namespaces, m.APIMode, m.Leader, m.ConfigReloads, m.InvalidPolicies, m.ExposedNamespaces,
			m.Settling, m.SettleWaits, m.RancherIsolation,
			m.PendingDeniedFlows, m.FlowEvidenceAvailable, m.PredictionDisagreements)
	}
	return m
}

// SetAPI records the Calico API calico-pni writes.
func (m *Metrics) SetAPI(api calico.API) {
	m.APIMode.Reset()
	m.APIMode.WithLabelValues(api.GroupVersion().String(), api.Version.String()).Set(1)
}

// SetPending records the pending denied flows by project; nil removes
// every series (flow logs are not read).
func (m *Metrics) SetPending(byProject map[string]int64) {
	m.PendingDeniedFlows.Reset()
	for project, n := range byProject {
		if project == "" {
			project = "none"
		}
		m.PendingDeniedFlows.WithLabelValues(project).Set(float64(n))
	}
}

// SetNamespaces records the namespaces by state.
func (m *Metrics) SetNamespaces(counts map[policies.State]int) {
	for _, state := range []policies.State{policies.Isolated, policies.Staged, policies.Exempt, policies.Open, policies.Error} {
		m.Namespaces.WithLabelValues(string(state)).Set(float64(counts[state]))
	}
}
