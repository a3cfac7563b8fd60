package config

import (
	"strings"
	"testing"
	"time"
)

func TestFlowsDefaultsAreOff(t *testing.T) {
	cfg := Default()
	if cfg.Flows.Enabled || cfg.Projects.Promote.Automatic {
		t.Errorf("flows or automatic promotion on by default: %+v %+v", cfg.Flows, cfg.Projects.Promote)
	}
	if cfg.Flows.Address != "goldmane.calico-system.svc:7443" {
		t.Errorf("address %q, want the goldmane Service of an operator install", cfg.Flows.Address)
	}
	if cfg.Flows.Window.Duration != 24*time.Hour || cfg.Flows.MaxGap.Duration != 5*time.Minute ||
		cfg.Projects.Promote.QuietFor.Duration != 168*time.Hour {
		t.Errorf("durations %v %v %v", cfg.Flows.Window, cfg.Flows.MaxGap, cfg.Projects.Promote.QuietFor)
	}
}

func TestParseFlows(t *testing.T) {
	cfg, err := Parse([]byte(`
rollout: enforce
projects:
  stage: [p-b6jcw]
  enforce: []
  promote:
    automatic: true
    quietFor: 72h
    accept:
      - project: p-b6jcw
        direction: ingress
        peerNamespace: old-*
        protocol: TCP
        ports: [9100]
        reason: the old exporter is going away
      - peerNetwork: pub
        reason: nothing of p-b6jcw may reach the internet
flows:
  enabled: true
  address: 10.43.0.10:7443
  serverName: goldmane.calico-system.svc
  tls: {caFile: /ca, certFile: /crt, keyFile: /key}
  window: 6h
  maxGap: 90s
`))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows
	if !f.Enabled || f.Address != "10.43.0.10:7443" || f.ServerName != "goldmane.calico-system.svc" ||
		f.TLS != (FlowsTLS{"/ca", "/crt", "/key"}) || f.Window.Duration != 6*time.Hour || f.MaxGap.Duration != 90*time.Second {
		t.Errorf("flows: %+v", f)
	}
	p := cfg.Projects.Promote
	if !p.Automatic || p.QuietFor.Duration != 72*time.Hour || len(p.Accept) != 2 ||
		p.Accept[0].PeerNamespace != "old-*" || p.Accept[0].Ports[0] != 9100 || p.Accept[1].PeerNetwork != "pub" {
		t.Errorf("promote: %+v", p)
	}
	// The rest of projects keeps its defaults only where the file is silent.
	if len(cfg.Projects.Stage) != 1 || len(cfg.Projects.Enforce) != 0 {
		t.Errorf("projects: %+v", cfg.Projects)
	}
}

func TestFlowsErrorsNameTheField(t *testing.T) {
	on := "flows: {enabled: true, tls: {caFile: /ca, certFile: /crt, keyFile: /key}}\n"
	tests := []struct{ yaml, want string }{
		{"flows: {address: goldmane}", `flows.address: "goldmane" is not host:port; write e.g. goldmane.calico-system.svc:7443`},
		{"flows: {address: ':7443'}", `flows.address: ":7443" is not host:port`},
		{"flows: {address: 'goldmane:http'}", `flows.address: "goldmane:http": port "http" is not a number`},
		{"flows: {enabled: true, tls: {caFile: ''}}", "flows.tls.caFile: must name the file of the CA certificate"},
		{"flows: {enabled: true, tls: {keyFile: ' '}}", "flows.tls.keyFile: must name the file"},
		{"flows: {serverName: Goldmane_1}", `flows.serverName: "Goldmane_1" is not a DNS name`},
		{"flows: {window: 1 day}", `flows.window: "1 day" is not a duration such as "24h"`},
		{"flows: {window: 24}", `flows.window: expected a duration such as "24h"`},
		{"flows: {window: 1m}", "flows.window: 1m0s: must lie between 15m0s and 720h0m0s"},
		{"flows: {maxGap: 5s}", "flows.maxGap: 5s: must be at least 30s"},
		{"flows: {window: 1h, maxGap: 2h}", "flows.maxGap: 2h0m0s: must be at least 30s (Goldmane sends flows every 15s) and at most flows.window"},
		{"flows: {tls: {ca: x}}", "flows.tls.ca: unknown field"},
		{"projects: {promote: {quietFor: 10m}}", "projects.promote.quietFor: 10m0s: must be at least 1h0m0s"},
		{"projects: {promote: {automatic: true}}", "projects.promote.automatic: needs flow evidence: set flows.enabled to true"},
		{on + "rollout: stage\nprojects: {promote: {automatic: true}}", "projects.promote.automatic: rollout: stage enforces nothing"},
		{"projects: {promote: {accept: [{reason: r}]}}", "projects.promote.accept[0]: accepts every pending deny of its namespaces"},
		{"projects: {promote: {accept: [{ports: [80]}]}}", "projects.promote.accept[0].reason: must say why"},
		{"projects: {promote: {accept: [{ports: [0], reason: r}]}}", "projects.promote.accept[0].ports[0]: 0 is not a port number"},
		{"projects: {promote: {accept: [{ports: [80], direction: in, reason: r}]}}", `projects.promote.accept[0].direction: "in": use "ingress", "egress"`},
		{"projects: {promote: {accept: [{peerNetwork: internet, reason: r}]}}", `projects.promote.accept[0].peerNetwork: "internet": use "pub"`},
		{"projects: {promote: {accept: [{peerNetwork: pub, peerNamespace: a, reason: r}]}}", "projects.promote.accept[0].peerNetwork: an address outside the cluster has no namespace"},
		{"projects: {promote: {accept: [{peerNamespace: 'a-*-*', reason: r}]}}", `projects.promote.accept[0].peerNamespace: "a-*-*" has more than one '*'`},
		{"projects: {promote: {accept: [{peerProject: P_1, reason: r}]}}", `projects.promote.accept[0].peerProject: "P_1" is not a project ID`},
		{"projects: {promote: {accept: [{project: p-a, namespace: Bad_NS, ports: [1], reason: r}]}}", "projects.promote.accept[0].namespace"},
		{"projects: {promote: {accept: [{ports: [1], protocol: ICMP, reason: r}]}}", `projects.promote.accept[0].protocol: "ICMP" is not TCP, UDP or SCTP`},
		{"projects: {promote: {accept: [{ports: [1], reason: r, why: x}]}}", "projects.promote.accept[0].why: unknown field"},
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
	if _, err := Parse([]byte(on)); err != nil {
		t.Errorf("flows with its TLS files is refused: %v", err)
	}
}

func TestDurationRoundTrip(t *testing.T) {
	d := Duration{90 * time.Minute}
	b, err := d.MarshalJSON()
	if err != nil || string(b) != `"1h30m0s"` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	var back Duration
	if err := back.UnmarshalJSON(b); err != nil || back != d {
		t.Errorf("UnmarshalJSON(%s) = %v, %v", b, back, err)
	}
}
