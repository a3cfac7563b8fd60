// Package calico holds the parts of Calico's policy API that calico-pni
// writes: the GlobalNetworkPolicy and NetworkPolicy types with Calico's own
// JSON field names, a typed selector builder, and the validation Calico
// would apply. Calico drops an invalid policy written straight into its
// crd.projectcalico.org/v1 CRDs without telling anyone, so nothing leaves
// calico-pni without passing Validate first.
//
// github.com/projectcalico/api is not available to this project, so the
// types are defined here; field names follow
// api/pkg/apis/projectcalico/v3 in projectcalico/calico.
package calico

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Action is what a rule does with matching traffic.
type Action string

// The rule actions Calico knows.
const (
	Allow Action = "Allow"
	Deny  Action = "Deny"
	Log   Action = "Log"
	Pass  Action = "Pass"
)

// PolicyType is a direction a policy applies to.
type PolicyType string

// The two policy directions.
const (
	Ingress PolicyType = "Ingress"
	Egress  PolicyType = "Egress"
)

// GlobalNetworkPolicySpec is the spec of a Calico GlobalNetworkPolicy.
type GlobalNetworkPolicySpec struct {
	// Tier is left unset for the default tier (Calico 3.28's v1 CRD has no
	// such field: the API server would prune it and calico-pni would see a
	// difference on every pass) and names calico-pni's own tier in tier
	// mode (Calico 3.29 and later).
	Tier                   string       `json:"tier,omitempty"`
	Order                  *float64     `json:"order,omitempty"`
	Selector               string       `json:"selector,omitempty"`
	NamespaceSelector      string       `json:"namespaceSelector,omitempty"`
	ServiceAccountSelector string       `json:"serviceAccountSelector,omitempty"`
	Types                  []PolicyType `json:"types,omitempty"`
	Ingress                []Rule       `json:"ingress,omitempty"`
	Egress                 []Rule       `json:"egress,omitempty"`
	DoNotTrack             bool         `json:"doNotTrack,omitempty"`
	PreDNAT                bool         `json:"preDNAT,omitempty"`
	ApplyOnForward         bool         `json:"applyOnForward,omitempty"`
	PerformanceHints       []string     `json:"performanceHints,omitempty"`
	// StagedAction is set on staged policies only: Set (the policy as it
	// would be enforced) or Delete.
	StagedAction string `json:"stagedAction,omitempty"`
}

// NetworkPolicySpec is the spec of a namespaced Calico NetworkPolicy. It has
// no namespaceSelector, doNotTrack, preDNAT or applyOnForward.
type NetworkPolicySpec struct {
	Tier                   string       `json:"tier,omitempty"`
	Order                  *float64     `json:"order,omitempty"`
	Selector               string       `json:"selector,omitempty"`
	ServiceAccountSelector string       `json:"serviceAccountSelector,omitempty"`
	Types                  []PolicyType `json:"types,omitempty"`
	Ingress                []Rule       `json:"ingress,omitempty"`
	Egress                 []Rule       `json:"egress,omitempty"`
	PerformanceHints       []string     `json:"performanceHints,omitempty"`
	StagedAction           string       `json:"stagedAction,omitempty"`
}

// GlobalNetworkPolicy is a cluster-wide Calico policy.
type GlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GlobalNetworkPolicySpec `json:"spec"`
}

// NetworkPolicy is a namespaced Calico policy.
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkPolicySpec `json:"spec"`
}

// Rule matches traffic and applies an action to it.
type Rule struct {
	Action      Action        `json:"action"`
	IPVersion   *int          `json:"ipVersion,omitempty"`
	Protocol    *Protocol     `json:"protocol,omitempty"`
	NotProtocol *Protocol     `json:"notProtocol,omitempty"`
	ICMP        *ICMPFields   `json:"icmp,omitempty"`
	NotICMP     *ICMPFields   `json:"notICMP,omitempty"`
	Source      EntityRule    `json:"source,omitzero"`
	Destination EntityRule    `json:"destination,omitzero"`
	HTTP        *HTTPMatch    `json:"http,omitempty"`
	Metadata    *RuleMetadata `json:"metadata,omitempty"`
}

// EntityRule matches the source or the destination of traffic.
type EntityRule struct {
	Nets              []string             `json:"nets,omitempty"`
	NotNets           []string             `json:"notNets,omitempty"`
	Selector          string               `json:"selector,omitempty"`
	NotSelector       string               `json:"notSelector,omitempty"`
	NamespaceSelector string               `json:"namespaceSelector,omitempty"`
	Ports             []Port               `json:"ports,omitempty"`
	NotPorts          []Port               `json:"notPorts,omitempty"`
	ServiceAccounts   *ServiceAccountMatch `json:"serviceAccounts,omitempty"`
	Services          *ServiceMatch        `json:"services,omitempty"`
}

// ICMPFields matches an ICMP type and, optionally, a code.
type ICMPFields struct {
	Type *int `json:"type,omitempty"`
	Code *int `json:"code,omitempty"`
}

// ServiceAccountMatch matches pods by the name or labels of their service
// account.
type ServiceAccountMatch struct {
	Names    []string `json:"names,omitempty"`
	Selector string   `json:"selector,omitempty"`
}

// ServiceMatch matches the endpoints of a Kubernetes Service (Calico 3.20+).
type ServiceMatch struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// HTTPMatch is an application-layer match (needs Calico's application layer
// policy; calico-pni never writes it but must see it when it compares).
type HTTPMatch struct {
	Methods []string        `json:"methods,omitempty"`
	Paths   []HTTPPathMatch `json:"paths,omitempty"`
}

// HTTPPathMatch matches an HTTP path exactly or by prefix.
type HTTPPathMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// RuleMetadata carries annotations on a rule.
type RuleMetadata struct {
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Protocol is a Calico protocol: a name (TCP, UDP, ICMP, ICMPv6, SCTP,
// UDPLite) or a number 1-255. In JSON it is a string or an integer.
type Protocol struct {
	Name   string
	Number uint8
}

// The protocols calico-pni writes.
var (
	TCP  = Protocol{Name: "TCP"}
	UDP  = Protocol{Name: "UDP"}
	SCTP = Protocol{Name: "SCTP"}
)

// ProtocolFor returns a pointer to a copy of p, for use in a Rule.
func ProtocolFor(p Protocol) *Protocol { return &p }

// String returns the protocol as Calico prints it.
func (p Protocol) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// SupportsPorts reports whether Calico accepts port matches with p:
// TCP, UDP and SCTP, by name or by number.
func (p Protocol) SupportsPorts() bool {
	switch strings.ToUpper(p.Name) {
	case "TCP", "UDP", "SCTP":
		return true
	case "":
		return p.Number == 6 || p.Number == 17 || p.Number == 132
	}
	return false
}

// MarshalJSON writes a name as a string and a number as an integer.
func (p Protocol) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	return json.Marshal(p.Number)
}

// UnmarshalJSON reads a string or an integer.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	var n uint8
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Protocol{Number: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("protocol must be a name or a number 1-255, not %s", b)
	}
	*p = Protocol{Name: s}
	return nil
}

// Port is a Calico port match: one port, a range "min:max", or the name of
// a container port. In JSON a single port is an integer and the others are
// strings.
type Port struct {
	Min, Max uint16
	Name     string
}

// PortNumber returns a match for one port.
func PortNumber(n uint16) Port { return Port{Min: n, Max: n} }

// String returns the port as it appears in JSON, without quotes.
func (p Port) String() string {
	switch {
	case p.Name != "":
		return p.Name
	case p.Min == p.Max:
		return strconv.Itoa(int(p.Min))
	default:
		return fmt.Sprintf("%d:%d", p.Min, p.Max)
	}
}

// MarshalJSON writes a single port as an integer, anything else as a string.
func (p Port) MarshalJSON() ([]byte, error) {
	if p.Name == "" && p.Min == p.Max {
		return json.Marshal(p.Min)
	}
	return json.Marshal(p.String())
}

// UnmarshalJSON reads an integer, a "min:max" string, a numeric string or a
// port name. It does not judge the values; Validate does.
func (p *Port) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d is out of range 0-65535", n)
		}
		*p = PortNumber(uint16(n))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("port must be a number, a range \"min:max\" or a port name, not %s", b)
	}
	parsed, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// ParsePort reads "80", "8000:8080" or a port name such as "http".
func ParsePort(s string) (Port, error) {
	if s == "" {
		return Port{}, fmt.Errorf("port is empty")
	}
	if lo, hi, ok := strings.Cut(s, ":"); ok {
		min, err1 := strconv.ParseUint(lo, 10, 16)
		max, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil {
			return Port{}, fmt.Errorf("port range %q must be two numbers 1-65535 as \"min:max\"", s)
		}
		return Port{Min: uint16(min), Max: uint16(max)}, nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return Port{}, fmt.Errorf("port %q must be a number 1-65535", s)
		}
		return PortNumber(uint16(n)), nil
	}
	return Port{Name: s}, nil
}
