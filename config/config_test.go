package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("an empty file does not give the defaults: %+v", cfg)
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
systemProject: p-sys01
isolateUnassigned: true
dns:
  mode: any
kubeAPI:
  extraCIDRs: [192.0.2.10/32]
roles:
  postgres:
    ports: [5432]
  dns-over-tls:
    protocol: TCP
    ports: ["853", "8000:8010", https]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SystemProject != "p-sys01" || !cfg.IsolateUnassigned || cfg.DNS.Mode != DNSAny {
		t.Errorf("fields not read: %+v", cfg)
	}
	// Fields of a section the file does not set keep their defaults.
	if cfg.DNS.Port != 53 || cfg.KubeAPI.Port != 6443 || cfg.KubeAPI.RefreshSchedule != "*/5 * * * *" {
		t.Errorf("defaults lost: dns.port %d, kubeAPI %+v", cfg.DNS.Port, cfg.KubeAPI)
	}
	// A map in the file replaces the default map: redis is gone.
	if got := cfg.RoleNames(); !reflect.DeepEqual(got, []string{"dns-over-tls", "postgres"}) {
		t.Errorf("roles = %v", got)
	}
	if r := cfg.Roles["postgres"]; r.Consumers != ConsumersAny || r.Projects == nil {
		t.Errorf("a role without consumers did not default to any: %+v", r)
	}
	peers, err := Parse([]byte("projectPeers: [{project: p-a, from: [p-b], ports: [8080]}]"))
	if err != nil || peers.ProjectPeers[0].Protocol != "TCP" {
		t.Errorf("a peer with ports and no protocol did not default to TCP: %+v %v", peers, err)
	}
	if cfg.Roles["postgres"].Protocol != "TCP" {
		t.Errorf("a role without protocol did not default to TCP: %+v", cfg.Roles["postgres"])
	}
	want := []calico.Port{calico.PortNumber(853), {Min: 8000, Max: 8010}, {Name: "https"}}
	if !reflect.DeepEqual(cfg.Roles["dns-over-tls"].Ports, want) {
		t.Errorf("ports = %v", cfg.Roles["dns-over-tls"].Ports)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"dnss: {}", "dnss: unknown field; known fields here are systemProject"},
		{"dns: {mode: cluster, podLabel: {a: b}}", "dns.podLabel: unknown field"},
		{"dns: {mode: everywhere}", `dns.mode: "everywhere" is not a DNS mode`},
		{"dns: {podLabels: {}}", "dns.podLabels: must select the DNS pods"},
		{"dns: {port: 70000}", "dns.port: 70000 is not a port number"},
		{"kubeAPI: {port: https}", "kubeAPI.port: expected a whole number"},
		{"kubeAPI: {port: 64.5}", "kubeAPI.port: expected a whole number"},
		{"kubeAPI: {extraCIDRs: [10.0.0.5]}", `kubeAPI.extraCIDRs[0]: "10.0.0.5" is not a CIDR`},
		{"kubeAPI: {extraCIDRs: [10.0.0.5/24]}", "write 10.0.0.0/24"},
		{"kubeAPI: {refreshSchedule: every five minutes}", "kubeAPI.refreshSchedule"},
		{"systemProject: c-abcde:p-xyz12", "give the project part only"},
		{"systemProject: 42", "systemProject: expected a string"},
		{"isolateEgress: yes please", "isolateEgress: expected true or false"},
		{"exemptNamespaces: [cattle-*-*]", "exemptNamespaces[0]: \"cattle-*-*\" has more than one '*'"},
		{"exemptNamespaces: [Kube_System]", "exemptNamespaces[0]"},
		{"exemptNamespaces: kube-system", "exemptNamespaces: expected a list"},
		{"exemptNamespaces: ['*']", `exemptNamespaces[0]: "*" exempts every namespace, which turns isolation off everywhere; if that is meant, also set allowExemptAll: true`},
		{"exemptNamespaces: [kube-system, '*']\nallowExemptAll: false", `exemptNamespaces[1]: "*" exempts every namespace`},
		{"allowExemptAll: true", `allowExemptAll: is only read when exemptNamespaces holds "*"`},
		{"monitoring: [{namespace: x}]", "monitoring[0].serviceAccounts: must name at least one"},
		{"logging: [{namespace: '', serviceAccounts: [a]}]", "logging[0].namespace: must not be empty"},
		{"rancherAgent: [{namespace: a, serviceAccounts: [Bad_SA]}]", "rancherAgent[0].serviceAccounts[0]"},
		{"ingressController: {namespaceLabels: {}}", "ingressController.namespaceLabels: must name"},
		{"ingressController: {ports: []}", "ingressController.ports: must list at least one port"},
		{"ingressController: {ports: [0]}", "ingressController.ports[0]: 0 is not a port"},
		{"ingressController: {ports: [99999]}", "ingressController.ports[0]: port 99999 is out of range"},
		{"ingressController: {ports: ['90:80']}", "ingressController.ports[0]: range 90:80 runs backwards"},
		{"ingressController: {backendLabels: {'bad key!': x}}", "is not a label key"},
		{"roles: {redis: {ports: []}}", "roles.redis.ports: must list at least one port"},
		{"roles: {redis: {}}", "roles.redis.ports: must list at least one port"},
		{"roles: {Redis_DB: {ports: [1]}}", "roles.Redis_DB: role names must be"},
		{"roles: {redis: {protocol: ICMP, ports: [1]}}", `roles.redis.protocol: "ICMP" is not TCP, UDP or SCTP`},
		{"roles: {redis: {ports: [1], extra: 2}}", "roles.redis.extra: unknown field"},
		{"roles: {redis: {ports: [1], consumers: friends}}", `roles.redis.consumers: "friends": use "any", "sameProject" or "projects"`},
		{"roles: {redis: {ports: [1], consumers: projects}}", "roles.redis.projects: must list the projects"},
		{"roles: {redis: {ports: [1], consumers: projects, projects: [P_1]}}", `roles.redis.projects[0]: "P_1" is not a project ID`},
		{"roles: {redis: {ports: [1], projects: [p-a]}}", `roles.redis.projects: is only read when consumers is "projects"`},
		{"kubeAPI: {mode: dns}", `kubeAPI.mode: "dns": use "auto", "addresses", "service" or "both"`},
		{"internet: {label: 'bad label!'}", `internet.label: "bad label!" is not a label key`},
		{"internet: {excludeCIDRs: []}", "internet.excludeCIDRs: must list at least the cluster's pod and service ranges"},
		{"internet: {excludeCIDRs: [10.42.0.1/16]}", "internet.excludeCIDRs[0]: \"10.42.0.1/16\" has host bits set; write 10.42.0.0/16"},
		{"projectPeers: [{project: p-a}]", "projectPeers[0].from: must list the projects p-a accepts traffic from"},
		{"projectPeers: [{project: p-a, from: [p-a]}]", "projectPeers[0].from[0]: p-a is the project itself"},
		{"projectPeers: [{project: '', from: [p-b]}]", `projectPeers[0].project: "" is not a project ID`},
		{"projectPeers: [{project: p-a, from: [p-b], protocol: TCP}]", "projectPeers[0].protocol: is only read with ports"},
		{"projectPeers: [{project: p-a, from: [p-b], protocol: ICMP, ports: [1]}]", `projectPeers[0].protocol: "ICMP" is not TCP, UDP or SCTP`},
		{"hostNetwork: true", "hostNetwork: expected a mapping of fields, got a boolean"},
		{"allowOptOut: maybe", "allowOptOut: expected true or false"},
		{"- a\n- b", "must be a mapping of fields"},
		{"dns: [a]", "dns: expected a mapping of fields, got a list"},
		{"dns: {mode: cluster\n", "not valid YAML"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml))
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tt.yaml, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v\nwant it to contain %q", tt.yaml, err, tt.want)
		}
	}
}

// Exempting every namespace turns isolation off in the whole cluster: it
// takes a second setting that says so.
func TestExemptAllNeedsConfirmation(t *testing.T) {
	cfg, err := Parse([]byte("exemptNamespaces: ['*']\nallowExemptAll: true\n"))
	if err != nil || !cfg.AllowExemptAll || !reflect.DeepEqual(cfg.ExemptNamespaces, []string{"*"}) {
		t.Errorf("exemptNamespaces ['*'] with allowExemptAll: %+v, %v", cfg, err)
	}
	if Default().AllowExemptAll {
		t.Error("allowExemptAll is on by default")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("dns: {mode: x}\nkubeAPI: {port: 0}\nroles: {a: {ports: []}}"))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, want := range []string{"dns.mode", "kubeAPI.port", "roles.a.ports"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %s", err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("isolateUnassigned: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || !cfg.IsolateUnassigned {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("dns: {mode: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "dns.mode") {
		t.Errorf("Load(bad) = %v; want the path and the field", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	if cfg, err := Load(""); err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load(\"\") = %+v, %v", cfg, err)
	}
}

// FuzzParse checks that no input makes the loader panic, and that whatever
// it accepts is valid.
// FuzzParse checks what the loader promises about any input: an accepted
// file describes the configuration completely (printed and read again, it
// gives the same configuration), and a refused one is refused with
// messages that each name the field at fault (or say the file is not a
// YAML mapping).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "dns: {mode: any}", "roles: {redis: {ports: [6379, '1:2', http]}}", "kubeAPI: {extraCIDRs: [10.0.0.0/8]}",
		"exemptNamespaces: ['a-*']", "[1, 2]", "null", "monitoring: [{namespace: a, serviceAccounts: [b]}]",
		"dns: {mode: everywhere}", "kubeAPI: {port: 0}", "roles: {x: {ports: []}}", "bogus: 1", "isolateEgress: maybe"} {
		f.Add([]byte(s))
	}
	topLevel := map[string]bool{}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		topLevel[name] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, "not valid YAML") || strings.HasPrefix(line, "the file must be a mapping") {
					continue
				}
				field, why, _ := strings.Cut(line, ": ")
				first, _, _ := strings.Cut(field, ".")
				first, _, _ = strings.Cut(first, "[")
				if !topLevel[first] && !(strings.HasPrefix(why, "unknown field") && field != "") {
					t.Fatalf("Parse(%q) refused it with %q, which names no field of the file", data, line)
				}
			}
			return
		}
		printed, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) accepted it, but its printed form %s is refused: %v", data, printed, err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("Parse(%q) and the reading of its printed form differ:\n%+v\n%+v", data, cfg, again)
		}
	})
}

// The defaults printed in docs/configuration.md are the real ones.
func TestDocumentedDefaults(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/configuration.md has no yaml block")
	}
	cfg, err := Parse([]byte(block))
	if err != nil {
		t.Fatalf("the documented defaults do not parse: %v", err)
	}
	documented, _ := json.Marshal(cfg)
	actual, _ := json.Marshal(Default())
	if string(documented) != string(actual) {
		t.Errorf("docs/configuration.md shows defaults that differ from config.Default():\n%s\n%s", documented, actual)
	}
	// Every field is shown, not only the ones that differ.
	raw, err := yaml.YAMLToJSON([]byte(block))
	if err != nil {
		t.Fatal(err)
	}
	var shown, all any
	_ = json.Unmarshal(raw, &shown)
	_ = json.Unmarshal(actual, &all)
	if missing := missingKeys(all, shown, ""); len(missing) > 0 {
		t.Errorf("docs/configuration.md leaves out %v", missing)
	}
}

func missingKeys(want, got any, path string) []string {
	w, ok := want.(map[string]any)
	if !ok {
		return nil
	}
	g, _ := got.(map[string]any)
	var out []string
	for k, v := range w {
		gv, present := g[k]
		if !present {
			out = append(out, path+k)
			continue
		}
		out = append(out, missingKeys(v, gv, path+k+".")...)
	}
	return out
}
