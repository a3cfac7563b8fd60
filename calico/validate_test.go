package calico

import (
	"strings"
	"testing"
)

func order(f float64) *float64 { return &f }
func ipv(n int) *int           { return &n }

// validPolicy is an allow policy of the shape calico-pni writes.
func validPolicy() Policy {
	return Policy{
		Name:  "pni-allow-kube-api",
		Class: ClassAllow,
		Spec: GlobalNetworkPolicySpec{
			Order:             order(2000),
			NamespaceSelector: "calico-pni.io/isolated == 'true'",
			Types:             []PolicyType{Egress},
			Egress: []Rule{{
				Action:      Allow,
				Protocol:    ProtocolFor(TCP),
				Destination: EntityRule{Nets: []string{"10.0.0.1/32"}, Ports: []Port{PortNumber(6443)}},
			}},
		},
	}
}

func TestValidateAcceptsValidPolicy(t *testing.T) {
	if err := Validate(validPolicy()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ns := validPolicy()
	ns.Namespace = "team-a"
	ns.Spec.NamespaceSelector = ""
	ns.Spec.Selector = "all()"
	if err := Validate(ns); err != nil {
		t.Fatalf("Validate namespaced: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *Policy)
		want   string
	}{
		{"dotted name", func(p *Policy) { p.Name = "default.pni-x" }, "metadata.name"},
		{"upper-case name", func(p *Policy) { p.Name = "PNI" }, "metadata.name"},
		{"unknown class", func(p *Policy) { p.Class = "deny" }, "class"},
		{"tier set", func(p *Policy) { p.Spec.Tier = "default" }, "spec.tier"},
		{"no order", func(p *Policy) { p.Spec.Order = nil }, "spec.order"},
		{"no types", func(p *Policy) { p.Spec.Types = nil }, "spec.types: must be set"},
		{"duplicate type", func(p *Policy) { p.Spec.Types = []PolicyType{Egress, Egress} }, "listed twice"},
		{"unknown type", func(p *Policy) { p.Spec.Types = []PolicyType{Egress, "Both"} }, `"Both"`},
		{"rules without their type", func(p *Policy) { p.Spec.Types = []PolicyType{Ingress} }, "spec.egress: has rules but types does not list Egress"},
		{"selects everything", func(p *Policy) { p.Spec.NamespaceSelector = "" }, "selects every endpoint, host endpoints included"},
		{"bad selector", func(p *Policy) { p.Spec.NamespaceSelector = "a = 'b'" }, "spec.namespaceSelector"},
		{"bad action", func(p *Policy) { p.Spec.Egress[0].Action = "allow" }, "spec.egress[0].action"},
		{"ports without protocol", func(p *Policy) { p.Spec.Egress[0].Protocol = nil }, "ports need protocol TCP, UDP or SCTP"},
		{"ports with ICMP", func(p *Policy) { p.Spec.Egress[0].Protocol = &Protocol{Name: "ICMP"} }, "ports need protocol"},
		{"port 0", func(p *Policy) { p.Spec.Egress[0].Destination.Ports = []Port{PortNumber(0)} }, "port 0"},
		{"backwards range", func(p *Policy) { p.Spec.Egress[0].Destination.Ports = []Port{{Min: 90, Max: 80}} }, "runs backwards"},
		{"bad port name", func(p *Policy) { p.Spec.Egress[0].Destination.Ports = []Port{{Name: "not_a_port_name!"}} }, "ports[0]"},
		{"empty ports", func(p *Policy) { p.Spec.Egress[0].Destination.Ports = []Port{} }, "would match every port"},
		{"empty nets", func(p *Policy) { p.Spec.Egress[0].Destination.Nets = []string{} }, "would match every address"},
		{"bad CIDR", func(p *Policy) { p.Spec.Egress[0].Destination.Nets = []string{"10.0.0.300/32"} }, "is not a CIDR"},
		{"host bits", func(p *Policy) { p.Spec.Egress[0].Destination.Nets = []string{"10.0.0.1/24"} }, "write 10.0.0.0/24"},
		{"mixed families", func(p *Policy) { p.Spec.Egress[0].Destination.Nets = []string{"10.0.0.1/32", "fd00::1/128"} }, "mixes IPv6 into a rule for IPv4"},
		{"family against ipVersion", func(p *Policy) { p.Spec.Egress[0].IPVersion = ipv(6) }, "mixes IPv4 into a rule for IPv6"},
		{"bad ipVersion", func(p *Policy) { p.Spec.Egress[0].IPVersion = ipv(5) }, "must be 4 or 6"},
		{"icmp without protocol", func(p *Policy) {
			p.Spec.Egress[0].ICMP = &ICMPFields{}
			p.Spec.Egress[0].Protocol = ProtocolFor(UDP)
		}, "icmp needs protocol"},
		{"services with ports", func(p *Policy) {
			p.Spec.Egress[0].Destination.Services = &ServiceMatch{Name: "kubernetes", Namespace: "default"}
		}, "cannot be combined"},
		{"services without namespace", func(p *Policy) {
			p.Spec.Egress[0].Destination = EntityRule{Services: &ServiceMatch{Name: "kubernetes"}}
		}, "must be set in a GlobalNetworkPolicy"},
		{"services in egress source", func(p *Policy) {
			p.Spec.Egress[0].Source = EntityRule{Services: &ServiceMatch{Name: "a", Namespace: "b"}}
		}, "not allowed in an egress rule"},
		{"empty service account match", func(p *Policy) {
			p.Spec.Egress[0].Source.ServiceAccounts = &ServiceAccountMatch{}
		}, "names or selector must be set"},
		{"http rule", func(p *Policy) { p.Spec.Egress[0].HTTP = &HTTPMatch{Methods: []string{"GET"}} }, "application layer"},
		{"host endpoint fields", func(p *Policy) { p.Spec.DoNotTrack = true }, "host endpoints"},
		{"namespaced with namespaceSelector", func(p *Policy) { p.Namespace = "team-a" }, "has no namespaceSelector"},
		{"bad namespace", func(p *Policy) {
			p.Namespace = "Team_A"
			p.Spec.NamespaceSelector = ""
		}, "metadata.namespace"},
		{"selector too long", func(p *Policy) {
			p.Spec.Selector = "k == '" + strings.Repeat("x", 1100) + "'"
		}, "at most 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.change(&p)
			err := Validate(p)
			if err == nil {
				t.Fatalf("Validate accepted the policy, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v\nwant it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), p.Name) {
				t.Errorf("error %q does not name the policy", err)
			}
		})
	}
}
