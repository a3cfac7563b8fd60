package config

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Flows is where calico-pni reads Calico's flow logs: Goldmane, Calico
// Open Source's flow aggregator (3.30 and later), over gRPC with mutual
// TLS. The flow logs show which real connections staged isolation would
// deny; they feed `calico-pni status --pending`, the promotion gate
// (projects.promote) and `matrix --observed`.
type Flows struct {
	// Enabled turns the flow-log client on. Off by default: it needs a
	// client certificate that Goldmane accepts.
	Enabled bool `json:"enabled"`
	// Address is Goldmane's host:port; in an operator install the
	// goldmane Service in calico-system, port 7443.
	Address string `json:"address"`
	// ServerName is the name Goldmane's certificate must carry; blank:
	// the host of Address.
	ServerName string `json:"serverName"`
	// TLS names the files of the client's certificate, key and the CA
	// that signed Goldmane's certificate (mounted from a Secret).
	TLS FlowsTLS `json:"tls"`
	// Window is how far back pending denies are counted.
	Window Duration `json:"window"`
	// MaxGap is the longest silence from Goldmane after which the
	// evidence counts as broken: quiet time starts again when flows come
	// back.
	MaxGap Duration `json:"maxGap"`
}

// FlowsTLS are the files of the client's side of mutual TLS.
type FlowsTLS struct {
	CAFile   string `json:"caFile"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// Promote is the promotion gate of staged projects: a staged project
// passes once the flow logs have shown no unexpected pending deny for
// QuietFor, counted from when evidence for it became available.
type Promote struct {
	// Automatic lets the daemon enforce a staged project that passes the
	// gate; without it the gate only reports (`calico-pni status --ready`).
	Automatic bool `json:"automatic"`
	// QuietFor is how long a staged project must show no unexpected
	// pending deny: long enough to see every periodic job (a week by
	// default).
	QuietFor Duration `json:"quietFor"`
	// Accept lists pending denies that are expected: the connections
	// isolation is meant to stop. They do not hold a project back.
	Accept []AcceptedDeny `json:"accept"`
}

// AcceptedDeny matches pending denies the admin has accepted. Every field
// set must match; a field left blank matches anything. Namespaces accept
// a pattern with one '*'.
type AcceptedDeny struct {
	// Project and Namespace: the staged side, whose wall would deny.
	Project   string `json:"project"`
	Namespace string `json:"namespace"`
	// Direction is ingress or egress (of Namespace); blank: both.
	Direction string `json:"direction"`
	// PeerNamespace and PeerProject: the other end. PeerNetwork is "pub"
	// or "pvt" for addresses outside the cluster, as Calico names them.
	PeerNamespace string `json:"peerNamespace"`
	PeerProject   string `json:"peerProject"`
	PeerNetwork   string `json:"peerNetwork"`
	// Protocol (TCP, UDP, SCTP) and Ports of the destination.
	Protocol string `json:"protocol"`
	Ports    []int  `json:"ports"`
	// Reason says why the deny is expected; it is shown with it.
	Reason string `json:"reason"`
}

// Directions of an AcceptedDeny.
const (
	DirectionIngress = "ingress"
	DirectionEgress  = "egress"
)

// Duration is a length of time written as Go writes it ("24h", "90m",
// "168h").
type Duration struct{ time.Duration }

// UnmarshalJSON reads "24h" and the like.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a duration such as \"24h\" or \"30m\" (quoted), got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"24h\", \"30m\" or \"168h\" (a week); days are written in hours", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Defaults of the flows section and of projects.promote.
const (
	DefaultGoldmaneAddress = "goldmane.calico-system.svc:7443"
	DefaultGoldmaneTLSDir  = "/etc/calico-pni-goldmane"
)

// DefaultFlows is the flows section of Default: off, with the address of
// an operator install and certificate files where the chart mounts them.
func DefaultFlows() Flows {
	return Flows{
		Address: DefaultGoldmaneAddress,
		TLS: FlowsTLS{
			CAFile:   DefaultGoldmaneTLSDir + "/ca.crt",
			CertFile: DefaultGoldmaneTLSDir + "/tls.crt",
			KeyFile:  DefaultGoldmaneTLSDir + "/tls.key",
		},
		Window: Duration{24 * time.Hour},
		MaxGap: Duration{5 * time.Minute},
	}
}

// DefaultPromote is projects.promote of Default: report only, a week.
func DefaultPromote() Promote {
	return Promote{QuietFor: Duration{7 * 24 * time.Hour}, Accept: []AcceptedDeny{}}
}

// Limits of the flows settings.
const (
	minWindow   = 15 * time.Minute
	maxWindow   = 30 * 24 * time.Hour
	minMaxGap   = 30 * time.Second
	minQuietFor = time.Hour
)

// flowsErrors checks the flows section and projects.promote.
func (c *Config) flowsErrors() []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	f := c.Flows
	checkAddress("flows.address", f.Address, fail)
	if f.Enabled {
		for _, file := range []struct{ field, value, what string }{
			{"flows.tls.caFile", f.TLS.CAFile, "the CA certificate that signed Goldmane's certificate"},
			{"flows.tls.certFile", f.TLS.CertFile, "calico-pni's client certificate, signed by a CA Goldmane trusts"},
			{"flows.tls.keyFile", f.TLS.KeyFile, "the key of the client certificate"},
		} {
			if strings.TrimSpace(file.value) == "" {
				fail(file.field, "must name the file of %s (Goldmane accepts mutual TLS only), e.g. %s/...", file.what, DefaultGoldmaneTLSDir)
			}
		}
	}
	if f.ServerName != "" {
		if msgs := validation.IsDNS1123Subdomain(f.ServerName); len(msgs) > 0 {
			fail("flows.serverName", "%q is not a DNS name such as goldmane.calico-system.svc: %s", f.ServerName, strings.Join(msgs, "; "))
		}
	}
	if w := f.Window.Duration; w < minWindow || w > maxWindow {
		fail("flows.window", "%v: must lie between %v and %v (30 days)", w, minWindow, maxWindow)
	}
	if g := f.MaxGap.Duration; g < minMaxGap || g > f.Window.Duration {
		fail("flows.maxGap", "%v: must be at least %v (Goldmane sends flows every 15s) and at most flows.window", g, minMaxGap)
	}

	p := c.Projects.Promote
	if q := p.QuietFor.Duration; q < minQuietFor {
		fail("projects.promote.quietFor", "%v: must be at least %v; a week (168h) sees every daily and weekly job", q, minQuietFor)
	}
	if p.Automatic && !f.Enabled {
		fail("projects.promote.automatic", "needs flow evidence: set flows.enabled to true (with its TLS files), or automatic to false")
	}
	if p.Automatic && c.Rollout == RolloutStage {
		fail("projects.promote.automatic", "rollout: stage enforces nothing, so no project can be promoted; set rollout to enforce")
	}
	for i, a := range p.Accept {
		errs = append(errs, a.errors(fmt.Sprintf("projects.promote.accept[%d]", i))...)
	}
	return errs
}

func (a AcceptedDeny) errors(field string) []error {
	var errs []error
	fail := func(f, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, args...)))
	}
	for _, p := range []struct{ field, id string }{{"project", a.Project}, {"peerProject", a.PeerProject}} {
		if p.id != "" {
			if msgs := validation.IsDNS1123Label(p.id); len(msgs) > 0 {
				fail(field+"."+p.field, "%q is not a project ID such as p-b6jcw", p.id)
			}
		}
	}
	for _, n := range []struct{ field, pattern string }{{"namespace", a.Namespace}, {"peerNamespace", a.PeerNamespace}} {
		if n.pattern != "" {
			if err := checkPattern(n.pattern, validation.IsDNS1123Label); err != nil {
				fail(field+"."+n.field, "%v", err)
			}
		}
	}
	switch a.Direction {
	case "", DirectionIngress, DirectionEgress:
	default:
		fail(field+".direction", "%q: use %q, %q, or leave it out for both", a.Direction, DirectionIngress, DirectionEgress)
	}
	switch a.PeerNetwork {
	case "", "pub", "pvt":
	default:
		fail(field+".peerNetwork", "%q: use \"pub\" (public addresses) or \"pvt\" (private ones), as Calico's flow logs name them", a.PeerNetwork)
	}
	if a.PeerNetwork != "" && (a.PeerNamespace != "" || a.PeerProject != "") {
		fail(field+".peerNetwork", "an address outside the cluster has no namespace or project; give peerNetwork or peerNamespace/peerProject, not both")
	}
	switch a.Protocol {
	case "", "TCP", "UDP", "SCTP":
	default:
		fail(field+".protocol", "%q is not TCP, UDP or SCTP", a.Protocol)
	}
	for j, port := range a.Ports {
		checkPort(fmt.Sprintf("%s.ports[%d]", field, j), port, fail)
	}
	if a.PeerNamespace == "" && a.PeerProject == "" && a.PeerNetwork == "" && len(a.Ports) == 0 {
		fail(field, "accepts every pending deny of its namespaces, which would let the gate pass whatever the flow logs show; name a peer (peerNamespace, peerProject or peerNetwork) or ports")
	}
	if strings.TrimSpace(a.Reason) == "" {
		fail(field+".reason", "must say why these denies are expected (it is shown with them)")
	}
	return errs
}

func checkAddress(field, address string, fail func(string, string, ...any)) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || host == "" {
		fail(field, "%q is not host:port; write e.g. %s", address, DefaultGoldmaneAddress)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		fail(field, "%q: port %q is not a number 1-65535", address, port)
	}
}
