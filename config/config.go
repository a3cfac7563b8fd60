// Package config is calico-pni's configuration file: its fields, their
// defaults, and the checks that stop a bad file before anything is written.
// Every error names the field (as a dotted path) and says how to fix it.
package config

import (
	"slices"

	"github.com/calico-pni/calico-pni/calico"
)

// Config is the whole configuration file. Every field has a default; a
// field set in the file replaces the default, lists and maps included.
type Config struct {
	// SystemProject is the ID of Rancher's System project (p-xxxxx). Blank
	// means detect: the project of cattle-system, else of kube-system.
	SystemProject string `json:"systemProject"`
	// IsolateUnassigned isolates namespaces that are in no project, each
	// on its own. Rancher leaves them open, and so does the default.
	IsolateUnassigned bool `json:"isolateUnassigned"`
	// IsolateEgress adds the egress half of the baseline. Rancher's own
	// isolation is ingress-only; the article calico-pni comes from denies
	// egress too, and so does the default.
	IsolateEgress bool `json:"isolateEgress"`
	// TrustLabelOnly admits a namespace to the project named by its
	// field.cattle.io/projectId label when it has no annotation. Only for
	// clusters where Rancher does not manage projects: the label is not
	// guarded, so anyone who can edit a namespace can set it.
	TrustLabelOnly bool `json:"trustLabelOnly"`
	// ExemptNamespaces are never isolated. Entries are names or patterns
	// with one '*' ("cattle-*").
	ExemptNamespaces []string `json:"exemptNamespaces"`
	// AllowExemptAll confirms an entry "*" in ExemptNamespaces, which
	// exempts every namespace and so turns isolation off in the whole
	// cluster: without it such a file is refused, so that a stray "*"
	// cannot open every wall.
	AllowExemptAll bool `json:"allowExemptAll"`
	// DNS is what isolated pods may resolve names with.
	DNS DNS `json:"dns"`
	// KubeAPI is how isolated pods reach the Kubernetes API.
	KubeAPI KubeAPI `json:"kubeAPI"`
	// RancherAgent lists the Rancher agent's pods; they may send anywhere.
	RancherAgent []Workloads `json:"rancherAgent"`
	// Monitoring lists Prometheus pods; they may scrape isolated pods and
	// send anywhere.
	Monitoring []Workloads `json:"monitoring"`
	// Logging lists log shippers; they may send anywhere.
	Logging []Workloads `json:"logging"`
	// IngressController lets an ingress controller reach its backends.
	IngressController IngressController `json:"ingressController"`
	// Roles are opt-in services: a namespace labelled
	// network-policy/role_<name> accepts traffic on the role's ports from
	// namespaces labelled network-policy/allow_<name>.
	Roles map[string]Role `json:"roles"`
	// AllowOptOut honours the namespace annotation
	// calico-pni.io/isolation: disabled, which turns isolation off for that
	// namespace (rancher#25191). Anyone who can edit the namespace can set
	// it; set false to forbid opt-outs.
	AllowOptOut bool `json:"allowOptOut"`
	// HostNetwork lets isolated namespaces accept traffic from the nodes'
	// host-network addresses, as Rancher's hn-nodes policy does.
	HostNetwork Switch `json:"hostNetwork"`
	// ExternalServices lets traffic from outside the cluster reach the pods
	// behind NodePort and LoadBalancer Services and Services with
	// externalIPs, as Rancher's np-<service> policies do, but never from
	// pods of other projects (rancher#49430).
	ExternalServices Switch `json:"externalServices"`
	// HostPorts does the same for pods with host ports (Rancher's
	// hp-<pod>), selecting them by their own labels (rancher#26677).
	HostPorts Switch `json:"hostPorts"`
	// Internet lets namespaces with a label send traffic outside the
	// cluster (rancher#38518).
	Internet Internet `json:"internet"`
	// ProjectPeers are cross-project allow lists (rancher#18899).
	ProjectPeers []ProjectPeer `json:"projectPeers"`
	// Enforcement says where calico-pni's policies live: "tier" (a Calico
	// tier of calico-pni's own before the default tier, so that tenants'
	// NetworkPolicies restrict inside a project but never open a wall;
	// Calico 3.29 and later), "default-tier" (the default tier, next to
	// everyone else's policies), or "auto": tier on Calico 3.29 and later,
	// default-tier before.
	Enforcement string `json:"enforcement"`
	// Tier is calico-pni's own tier in tier mode.
	Tier Tier `json:"tier"`
	// Rollout is "enforce" (isolate the projects of projects.enforce,
	// stage those of projects.stage) or "stage": enforce nothing, and write
	// as staged policies (Calico 3.30 and later) what would be enforced,
	// for every project either list names, so that Calico's flow logs show
	// which real connections isolation would deny.
	Rollout string `json:"rollout"`
	// Projects says project by project what the rollout does.
	Projects Projects `json:"projects"`
	// Flows is where calico-pni reads Calico's flow logs (config/flows.go).
	Flows Flows `json:"flows"`
}

// Rollout modes.
const (
	RolloutEnforce = "enforce"
	RolloutStage   = "stage"
)

// AllProjects in a list of Projects stands for every project the other
// list does not name.
const AllProjects = "*"

// Projects lists project IDs (or "*") by what calico-pni does with their
// namespaces. A project both lists leave out is not isolated; its
// namespaces' status says so. A project named in one list is decided by
// it even when the other holds "*".
type Projects struct {
	// Enforce: isolated (staged instead while rollout is "stage").
	Enforce []string `json:"enforce"`
	// Stage: staged policies only.
	Stage []string `json:"stage"`
	// Promote is the gate a staged project passes once the flow logs show
	// it quiet (config/flows.go).
	Promote Promote `json:"promote"`
}

// Enforcement modes.
const (
	EnforcementAuto        = "auto"
	EnforcementTier        = "tier"
	EnforcementDefaultTier = "default-tier"
)

// TierName is the name of calico-pni's own tier.
const TierName = "calico-pni"

// Tier places calico-pni's own tier among the cluster's tiers.
type Tier struct {
	// Order: lower tiers are evaluated first. It must lie before the
	// default tier (1,000,000). The default, 10,000, comes after the tier
	// of Kubernetes AdminNetworkPolicies (adminnetworkpolicy, from 3.32
	// kube-admin: 1,000), so that a cluster admin's policies there still
	// decide before the project walls, and leaves room on both sides for
	// the admin's own tiers.
	Order float64 `json:"order"`
}

// Switch turns a feature on or off.
type Switch struct {
	Enabled bool `json:"enabled"`
}

// Internet is egress to everything outside the cluster.
type Internet struct {
	Enabled bool `json:"enabled"`
	// Label on a namespace (any value) that allows its pods out.
	Label string `json:"label"`
	// ExcludeCIDRs are never "outside": the cluster's pod and service
	// ranges, and link-local addresses (cloud metadata services). Node
	// addresses are excluded as well, from the cluster.
	ExcludeCIDRs []string `json:"excludeCIDRs"`
}

// ProjectPeer lets one project accept traffic from others.
type ProjectPeer struct {
	// Project accepts traffic...
	Project string `json:"project"`
	// ...from these projects.
	From []string `json:"from"`
	// Protocol and Ports limit it; no ports means every port and protocol.
	Protocol string        `json:"protocol"`
	Ports    []calico.Port `json:"ports"`
}

// Who may consume a role.
const (
	ConsumersAny         = "any"
	ConsumersSameProject = "sameProject"
	ConsumersProjects    = "projects"
)

// KubeAPI modes.
const (
	KubeAPIAuto      = "auto"
	KubeAPIAddresses = "addresses"
	KubeAPIService   = "service"
	KubeAPIBoth      = "both"
)

// Opt-out annotation and its values.
const (
	IsolationAnnotation = "calico-pni.io/isolation"
	IsolationDisabled   = "disabled"
	IsolationEnabled    = "enabled"
)

// DNS modes.
const (
	// DNSCluster allows DNS only to the cluster DNS pods.
	DNSCluster = "cluster"
	// DNSAny allows DNS to any destination, as the article did. It lets
	// pods talk DNS to the internet, a known way to smuggle data out.
	DNSAny = "any"
)

// DNS says where isolated pods may send DNS queries.
type DNS struct {
	// Mode is "cluster" (the DNS pods below) or "any" (any address).
	Mode string `json:"mode"`
	// Namespace of the cluster DNS pods.
	Namespace string `json:"namespace"`
	// PodLabels select the DNS pods in that namespace.
	PodLabels map[string]string `json:"podLabels"`
	// Port the DNS pods listen on, after kube-proxy's DNAT (TCP and UDP).
	Port int `json:"port"`
}

// KubeAPI says how isolated pods reach the Kubernetes API. Calico sees
// egress after kube-proxy's DNAT, so the rule names the API server's real
// addresses: every node address on Port, and the endpoints of the
// default/kubernetes Service on their own port.
type KubeAPI struct {
	// Port the API server listens on at node addresses (6443 on RKE, RKE2
	// and K3s).
	Port int `json:"port"`
	// ExtraCIDRs are more API addresses (a load balancer in front of the
	// control plane), allowed on Port.
	ExtraCIDRs []string `json:"extraCIDRs"`
	// RefreshSchedule is a cron schedule (five fields) on which the daemon
	// re-reads nodes and API endpoints from the API server, besides
	// following every change it is told of.
	RefreshSchedule string `json:"refreshSchedule"`
	// Mode is "addresses" (the lists above), "service" (Calico 3.20+
	// matches the endpoints of default/kubernetes itself), "both", or
	// "auto": both on Calico 3.20 and later, addresses before.
	Mode string `json:"mode"`
}

// Workloads names pods by namespace and service account. Both accept one
// '*' as a wildcard. Anyone who can create a namespace with a matching name
// and run a pod there under a matching service account gets the same
// access, so keep the patterns tight.
type Workloads struct {
	Namespace       string   `json:"namespace"`
	ServiceAccounts []string `json:"serviceAccounts"`
}

// IngressController is the article's ingress pair: the controller's
// namespace carries NamespaceLabels, backend namespaces carry BackendLabels,
// and the controller may reach backend pods on Ports.
type IngressController struct {
	Enabled         bool              `json:"enabled"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	BackendLabels   map[string]string `json:"backendLabels"`
	// Ports are the backend pods' own ports (the controller connects to
	// pods, not to Services).
	Ports []calico.Port `json:"ports"`
}

// Role is one opt-in service.
type Role struct {
	// Protocol is TCP, UDP or SCTP; TCP when left out.
	Protocol string `json:"protocol"`
	// Ports the role's pods accept on.
	Ports []calico.Port `json:"ports"`
	// Consumers says whose allow_<role> label counts: "any" namespace (a
	// label is a capability, as in the article), the "sameProject" as the
	// namespace offering the role, or the listed "projects". "any" when
	// left out.
	Consumers string `json:"consumers"`
	// Projects may consume the role when Consumers is "projects".
	Projects []string `json:"projects"`
}

// Label keys of the article's service roles.
const (
	RoleLabelPrefix  = "network-policy/role_"
	AllowLabelPrefix = "network-policy/allow_"
)

// Default returns the configuration used for every field the file leaves
// out. The defaults reproduce the article's policies, with its mistakes
// fixed (see docs/policies.md).
func Default() *Config {
	return &Config{
		IsolateEgress: true,
		ExemptNamespaces: []string{
			"kube-system", "kube-public", "kube-node-lease",
			"calico-system", "calico-apiserver", "tigera-operator",
			"cattle-*",
		},
		DNS: DNS{
			Mode:      DNSCluster,
			Namespace: "kube-system",
			PodLabels: map[string]string{"k8s-app": "kube-dns"},
			Port:      53,
		},
		KubeAPI: KubeAPI{
			Port:            6443,
			ExtraCIDRs:      []string{},
			RefreshSchedule: "*/5 * * * *",
			Mode:            KubeAPIAuto,
		},
		RancherAgent: []Workloads{
			{Namespace: "cattle-system", ServiceAccounts: []string{"cattle"}},
		},
		Monitoring: []Workloads{
			// Rancher monitoring v2 (rancher-monitoring chart).
			{Namespace: "cattle-monitoring-system", ServiceAccounts: []string{"rancher-monitoring-prometheus"}},
			// Project monitors of prometheus-federator.
			{Namespace: "cattle-project-p-*-monitoring", ServiceAccounts: []string{"cattle-project-p-*-prometheus"}},
			// Rancher monitoring v1, cluster and project level.
			{Namespace: "cattle-prometheus", ServiceAccounts: []string{"cluster-monitoring"}},
			{Namespace: "cattle-prometheus-p-*", ServiceAccounts: []string{"project-monitoring"}},
		},
		Logging: []Workloads{
			// Rancher logging v2 (rancher-logging chart).
			{Namespace: "cattle-logging-system", ServiceAccounts: []string{"rancher-logging-root-fluentd", "rancher-logging-root-fluentbit"}},
			// Rancher logging v1.
			{Namespace: "cattle-logging", ServiceAccounts: []string{"rancher-logging-fluentd"}},
		},
		IngressController: IngressController{
			Enabled:         true,
			NamespaceLabels: map[string]string{"ingress": "nginx"},
			BackendLabels:   map[string]string{"network-policy/ingress": "nginx"},
			Ports:           []calico.Port{calico.PortNumber(80), calico.PortNumber(443)},
		},
		Roles: map[string]Role{
			"redis": {Protocol: "TCP", Ports: []calico.Port{calico.PortNumber(6379)}, Consumers: ConsumersAny, Projects: []string{}},
		},
		AllowOptOut:      true,
		HostNetwork:      Switch{Enabled: true},
		ExternalServices: Switch{Enabled: true},
		HostPorts:        Switch{Enabled: true},
		Internet: Internet{
			Enabled: true,
			Label:   "network-policy/allow_internet",
			// RKE, RKE2 and K3s default pod and service ranges, and
			// link-local (169.254.169.254 is the cloud metadata service).
			ExcludeCIDRs: []string{"10.42.0.0/16", "10.43.0.0/16", "169.254.0.0/16", "fe80::/10"},
		},
		ProjectPeers: []ProjectPeer{},
		Enforcement:  EnforcementAuto,
		Tier:         Tier{Order: 10000},
		Rollout:      RolloutEnforce,
		Projects:     Projects{Enforce: []string{AllProjects}, Stage: []string{}, Promote: DefaultPromote()},
		Flows:        DefaultFlows(),
	}
}

// ProjectRollout returns what the configuration does with the namespaces
// of a project: RolloutEnforce, RolloutStage, or "" (neither).
func (c *Config) ProjectRollout(project string) string {
	mode := ""
	switch {
	case slices.Contains(c.Projects.Enforce, project):
		mode = RolloutEnforce
	case slices.Contains(c.Projects.Stage, project):
		mode = RolloutStage
	case slices.Contains(c.Projects.Enforce, AllProjects):
		mode = RolloutEnforce
	case slices.Contains(c.Projects.Stage, AllProjects):
		mode = RolloutStage
	}
	if mode != "" && c.Rollout == RolloutStage {
		mode = RolloutStage
	}
	return mode
}
