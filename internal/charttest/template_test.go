package charttest

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

const everyQuestion = "testdata/every-question.yaml"

func TestLint(t *testing.T) {
	for _, flags := range [][]string{nil, {"-f", everyQuestion}, withMonitoring} {
		args := append([]string{"lint", "--strict", chartDir(t), "--namespace", namespace, "--kube-version", kubeVersion}, flags...)
		if out, err := helm(t, args...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}

// renderedConfig returns the daemon's configuration file from the
// rendered ConfigMap.
func renderedConfig(t *testing.T, objects []*unstructured.Unstructured) []byte {
	t.Helper()
	cm := find(t, objects, "ConfigMap", release)
	data, _, _ := unstructured.NestedString(cm.Object, "data", "config.yaml")
	if data == "" {
		t.Fatal("the ConfigMap has no config.yaml")
	}
	return []byte(data)
}

// With default values the daemon runs with its own defaults, plus the
// release namespace among the exempt namespaces.
func TestDefaultConfigIsTheDaemonsDefault(t *testing.T) {
	data := renderedConfig(t, render(t))
	got, err := config.Parse(data)
	if err != nil {
		t.Fatalf("the daemon refuses the rendered configuration: %v\n%s", err, data)
	}
	want := config.Default()
	want.ExemptNamespaces = append(want.ExemptNamespaces, namespace)
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("rendered configuration\n%s\nwant\n%s", g, w)
	}
}

// The chart never isolates the namespace it is installed in, whatever the
// exempt list says, and adds it only when no entry covers it already.
func TestReleaseNamespaceIsExempt(t *testing.T) {
	tests := []struct {
		namespace string
		flags     []string
		want      []string // exemptNamespaces after the defaults' seven entries, or all of them with flags
	}{
		{"calico-pni-system", nil, append(config.Default().ExemptNamespaces, "calico-pni-system")},
		{"kube-system", nil, config.Default().ExemptNamespaces},
		{"cattle-pni", nil, config.Default().ExemptNamespaces},
		{"tools", []string{"--set", "config.exemptNamespaces={kube-system}"}, []string{"kube-system", "tools"}},
		{"tools", []string{"--set-json", "config.exemptNamespaces=[]"}, []string{"tools"}},
		{"net-tools", []string{"--set", "config.exemptNamespaces={*-tools}"}, []string{"*-tools"}},
		{"net-tools", []string{"--set", "config.exemptNamespaces={net-*}"}, []string{"net-*"}},
		{"net-tools", []string{"--set", "config.exemptNamespaces={n*s}"}, []string{"n*s"}},
		{"net-tools", []string{"--set", "config.exemptNamespaces={n*x}"}, []string{"n*x", "net-tools"}},
	}
	for _, tt := range tests {
		objects := render(t, append([]string{"--namespace", tt.namespace}, tt.flags...)...)
		cfg, err := config.Parse(renderedConfig(t, objects))
		if err != nil {
			t.Fatalf("namespace %s %v: %v", tt.namespace, tt.flags, err)
		}
		if !slices.Equal(cfg.ExemptNamespaces, tt.want) {
			t.Errorf("namespace %s %v: exemptNamespaces %q, want %q", tt.namespace, tt.flags, cfg.ExemptNamespaces, tt.want)
		}
		// The daemon agrees: the release namespace, in a user project, is exempt.
		ns := testbed.Namespace(tt.namespace, "c-m4x7q", "p-b6jcw")
		desired := policies.Generate(policies.Snapshot{Namespaces: []policies.Namespace{policies.NamespaceFrom(ns)}}, cfg)
		if len(desired.Namespaces) != 1 || desired.Namespaces[0].Status.State != policies.Exempt {
			t.Errorf("namespace %s %v: calico-pni would give it %+v", tt.namespace, tt.flags, desired.Namespaces)
		}
	}
}

// values.schema.json refuses bad values at install time, naming them.
func TestSchemaRefusesBadValues(t *testing.T) {
	tests := []struct {
		flags []string
		want  []string
	}{
		{[]string{"--set", "config.kubeAPI.port=https"}, []string{"/config/kubeAPI/port", "want integer"}},
		{[]string{"--set-json", "config.dns.port=53.5"}, []string{"/config/dns/port", "want integer"}},
		{[]string{"--set-json", "config.ingressController.ports=[80,8.5]"}, []string{"/config/ingressController/ports/1"}},
		{[]string{"--set-json", "config.roles.redis.ports=[\"tcp/6379\"]"}, []string{"/config/roles/redis/ports/0"}},
		{[]string{"--set", "config.dns.mode=google"}, []string{"/config/dns/mode", "'cluster', 'any'"}},
		{[]string{"--set", "config.kubeAPI.refreshSchedule=every 5 minutes"}, []string{"/config/kubeAPI/refreshSchedule", "'every 5 minutes'"}},
		{[]string{"--set", "config.kubeAPI.refreshSchedule=*/5 * * *"}, []string{"/config/kubeAPI/refreshSchedule", "'*/5 * * *'"}},
		{[]string{"--set", "config.kubeAPI.refreshSchedule=@sometimes"}, []string{"/config/kubeAPI/refreshSchedule", "'@sometimes'"}},
		{[]string{"--set", "config.isolateEgres=false"}, []string{"/config", "'isolateEgres'"}},
		{[]string{"--set", "logLevel=loud"}, []string{"/logLevel"}},
		{[]string{"--set", "replicas=0"}, []string{"/replicas"}},
		{[]string{"--set-json", `extraEnv=[{"value":"100MiB"}]`}, []string{"/extraEnv/0", "name"}},
	}
	for _, tt := range tests {
		_, err := renderErr(t, tt.flags...)
		if err == nil {
			t.Errorf("%v: accepted", tt.flags)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: the error does not name %q:\n%v", tt.flags, w, err)
			}
		}
	}
}

// extraEnv reaches the daemon's container after the variables the chart
// sets itself, and nothing else gets it.
func TestExtraEnv(t *testing.T) {
	objects := render(t, "--set-json", `extraEnv=[{"name":"GOMEMLIMIT","value":"100MiB"}]`)
	var d appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &d)
	env := d.Spec.Template.Spec.Containers[0].Env
	if len(env) != 3 || env[0].Name != "POD_NAME" || env[1].Name != "POD_NAMESPACE" || env[2].Name != "GOMEMLIMIT" || env[2].Value != "100MiB" {
		t.Errorf("daemon env %+v, want POD_NAME, POD_NAMESPACE, then GOMEMLIMIT=100MiB", env)
	}
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "GOMEMLIMIT" {
			t.Errorf("the uninstall hook got the daemon's extraEnv %+v", e)
		}
	}
}

// The schema is not stricter than the daemon: forms the daemon accepts
// pass it, and reach the daemon as given.
func TestSchemaAcceptsWhatTheDaemonAccepts(t *testing.T) {
	tests := [][]string{
		{"--set", "config.kubeAPI.refreshSchedule=@every 10m"},
		{"--set", "config.kubeAPI.refreshSchedule=@hourly"},
		{"--set", "config.kubeAPI.refreshSchedule=0 */2 * * 1-5"},
		{"--set", "config.kubeAPI.refreshSchedule=CRON_TZ=Europe/Berlin 0 3 * * *"},
		{"--set-json", `config.ingressController.ports=[80,"http","8000:8080","9090"]`},
		{"--set-json", `config.roles={"postgres":{"ports":[5432]},"redis":null}`},
		{"--set-json", `config.kubeAPI.extraCIDRs=["192.0.2.0/24","2001:db8::/64"]`},
		{"--set", "config.systemProject=p-7xq2n"},
		{"--set", "config.dns.mode=any"},
	}
	for _, flags := range tests {
		objects := render(t, flags...)
		if _, err := config.Parse(renderedConfig(t, objects)); err != nil {
			t.Errorf("%v: the daemon refuses what the schema accepted: %v", flags, err)
		}
	}
}

// The manifests around the daemon: nothing in the chart denies traffic,
// the uninstall hook's pod is not one of the Deployment's, the hook's RBAC
// exists before its Job, nothing may read Secrets, and the label guard
// needs ValidatingAdmissionPolicy.
func TestManifests(t *testing.T) {
	objects := render(t)
	for _, o := range objects {
		if strings.Contains(o.GetKind(), "NetworkPolic") {
			t.Errorf("the chart renders %s %s: it must not deny or allow traffic itself", o.GetKind(), o.GetName())
		}
		ns := o.GetNamespace()
		if ns != "" && ns != namespace && !(ns == "default" && o.GetName() == release+"-default") {
			t.Errorf("%s %s is in namespace %s", o.GetKind(), o.GetName(), ns)
		}
		switch o.GetKind() {
		case "ClusterRole", "Role":
			var role rbacv1.ClusterRole
			convert(t, o, &role)
			for _, r := range role.Rules {
				if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") || slices.Contains(r.Verbs, "*") || slices.Contains(r.APIGroups, "*") {
					t.Errorf("%s %s grants %v", o.GetKind(), o.GetName(), r)
				}
			}
		}
	}

	var d appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &d)
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !selector.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %s does not match its pods", selector)
	}
	if selector.Matches(labels.Set(job.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %s matches the uninstall hook's pod: the hook would wait for itself", selector)
	}
	args := job.Spec.Template.Spec.Containers[0].Args
	if want := "--stop-deployment=" + namespace + "/" + d.Name; len(args) == 0 || args[0] != "cleanup" || !slices.Contains(args, want) {
		t.Errorf("hook Job args %q, want cleanup ... %s", args, want)
	}

	jobWeight := ""
	for _, o := range objects {
		if !isHook(o) {
			continue
		}
		a := o.GetAnnotations()
		if a["helm.sh/hook"] != "pre-delete" || a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("hook %s %s: annotations %v", o.GetKind(), o.GetName(), a)
		}
		if o.GetKind() == "Job" {
			jobWeight = a["helm.sh/hook-weight"]
		}
	}
	for _, o := range objects {
		if isHook(o) && o.GetKind() != "Job" && atoi(t, o.GetAnnotations()["helm.sh/hook-weight"]) >= atoi(t, jobWeight) {
			t.Errorf("hook %s %s has weight %s, not below the Job's %s: it may not exist when the Job runs", o.GetKind(), o.GetName(), o.GetAnnotations()["helm.sh/hook-weight"], jobWeight)
		}
	}

	find(t, objects, "ValidatingAdmissionPolicy", release+"-label-guard")
	find(t, objects, "ValidatingAdmissionPolicyBinding", release+"-label-guard")
	// A cluster without ValidatingAdmissionPolicy (Kubernetes 1.27 to 1.29)
	// gets no label guard rather than a failed install.
	out, err := helm(t, "template", release, chartDir(t), "--namespace", namespace, "--kube-version", "v1.29.0")
	if err != nil {
		t.Fatal(err)
	}
	old, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range old {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			t.Errorf("rendered %s for a cluster without ValidatingAdmissionPolicy", o.GetKind())
		}
	}
	if len(old) != len(objects)-2 {
		t.Errorf("without the label guard the chart renders %d objects, want %d", len(old), len(objects)-2)
	}
}

// Every answer of the install form reaches the daemon's configuration or
// the manifests.
func TestEveryQuestion(t *testing.T) {
	objects := render(t, "-f", everyQuestion)
	data := renderedConfig(t, objects)
	if _, err := config.Parse(data); err != nil {
		t.Fatalf("the daemon refuses the rendered configuration: %v\n%s", err, data)
	}
	var rendered map[string]any
	if err := yaml.Unmarshal(data, &rendered); err != nil {
		t.Fatal(err)
	}
	answers := readValues(t, everyQuestion)

	var d appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &d)
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)
	daemonArgs := d.Spec.Template.Spec.Containers[0].Args
	kinds := map[string]bool{}
	for _, o := range objects {
		kinds[o.GetKind()] = true
	}
	manifests := map[string]func(answer any) bool{
		"replicas": func(a any) bool { return d.Spec.Replicas != nil && float64(*d.Spec.Replicas) == a },
		"dryRun":   func(a any) bool { return slices.Contains(daemonArgs, "--dry-run="+str(a)) },
		"logLevel": func(a any) bool {
			return slices.Contains(daemonArgs, "--log-level="+str(a)) && slices.Contains(job.Spec.Template.Spec.Containers[0].Args, "--log-level="+str(a))
		},
		"labelGuard.enabled": func(a any) bool {
			return kinds["ValidatingAdmissionPolicy"] == a && kinds["ValidatingAdmissionPolicyBinding"] == a
		},
		"serviceMonitor.enabled": func(a any) bool { return kinds["ServiceMonitor"] == a },
		// The Secret is mounted where the configuration's TLS files are.
		"flowsTLSSecret": func(a any) bool { return mountsGoldmaneSecret(d, rendered, str(a)) },
		// The form's comma-separated project lists become the lists of
		// config.projects.
		"rolloutProjects.enforce": func(a any) bool { return sameProjects(rendered, "projects.enforce", a) },
		"rolloutProjects.stage":   func(a any) bool { return sameProjects(rendered, "projects.stage", a) },
		// every-question.yaml turns the ServiceMonitor on and these off.
		"grafanaDashboard.enabled": func(a any) bool { return hasDashboard(objects) == a },
		"prometheusRule.enabled":   func(a any) bool { return kinds["PrometheusRule"] == a },
		"rancherMonitoring.serviceAccounts": func(a any) bool {
			return firstWorkloads(rendered, "monitoring", "cattle-monitoring-system", a)
		},
		"rancherLogging.serviceAccounts": func(a any) bool {
			return firstWorkloads(rendered, "logging", "cattle-logging-system", a)
		},
	}
	for _, q := range loadQuestions(t) {
		answer, ok := lookup(answers, q.Variable)
		if !ok {
			t.Errorf("%s does not answer question %s", everyQuestion, q.Variable)
			continue
		}
		if path, isConfig := strings.CutPrefix(q.Variable, "config."); isConfig {
			got, ok := lookup(rendered, path)
			if !ok || !sameJSON(got, withoutNulls(answer)) {
				t.Errorf("question %s: answered %v, the daemon's configuration has %v", q.Variable, answer, got)
			}
			continue
		}
		check, ok := manifests[q.Variable]
		if !ok {
			t.Errorf("question %s: this test does not know where its answer goes; add a check", q.Variable)
			continue
		}
		if !check(answer) {
			t.Errorf("question %s: the answer %v does not reach the manifests", q.Variable, answer)
		}
	}
}

// mountsGoldmaneSecret says whether the daemon's pod mounts the Secret at
// the directory of every TLS file of the rendered configuration's flows.
func mountsGoldmaneSecret(d appsv1.Deployment, rendered map[string]any, secret string) bool {
	volume := ""
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			volume = v.Name
		}
	}
	dir := ""
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == volume && m.ReadOnly {
			dir = m.MountPath
		}
	}
	if volume == "" || dir == "" {
		return false
	}
	for _, file := range []string{"caFile", "certFile", "keyFile"} {
		path, _ := lookup(rendered, "flows.tls."+file)
		if p, _ := path.(string); filepath.Dir(p) != dir {
			return false
		}
	}
	return true
}

// firstWorkloads says whether the rendered configuration's list (monitoring
// or logging) starts with namespace and exactly these service accounts.
func firstWorkloads(rendered map[string]any, list, namespace string, accounts any) bool {
	entries, _ := rendered[list].([]any)
	if len(entries) == 0 {
		return false
	}
	first, _ := entries[0].(map[string]any)
	return first["namespace"] == namespace && sameJSON(first["serviceAccounts"], accounts)
}

// hasDashboard says whether the chart rendered a Grafana dashboard.
func hasDashboard(objects []*unstructured.Unstructured) bool {
	for _, o := range objects {
		if o.GetKind() == "ConfigMap" && o.GetName() == release+"-dashboard" {
			return true
		}
	}
	return false
}

func convert(t testing.TB, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

func str(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// sameJSON compares two values as JSON documents.
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// withoutNulls drops map keys set to null, as Helm does when it merges
// values (null removes a default key).
func withoutNulls(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, x := range m {
		if x != nil {
			out[k] = withoutNulls(x)
		}
	}
	return out
}

// sameProjects compares a rendered project list with the form's
// comma-separated answer.
func sameProjects(rendered map[string]any, path string, answer any) bool {
	got, ok := lookup(rendered, path)
	if !ok {
		return false
	}
	var want []any
	for _, id := range strings.Split(str(answer), ",") {
		want = append(want, strings.TrimSpace(id))
	}
	return sameJSON(got, want)
}
