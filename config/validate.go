package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/calico-pni/calico-pni/calico"
)

// fillDefaults sets defaults inside entries the file gave without them.
func (c *Config) fillDefaults() {
	for name, r := range c.Roles {
		if r.Protocol == "" {
			r.Protocol = "TCP"
		}
		if r.Consumers == "" {
			r.Consumers = ConsumersAny
		}
		if r.Projects == nil {
			r.Projects = []string{}
		}
		c.Roles[name] = r
	}
	for i := range c.ProjectPeers {
		if c.ProjectPeers[i].Protocol == "" && len(c.ProjectPeers[i].Ports) > 0 {
			c.ProjectPeers[i].Protocol = "TCP"
		}
	}
}

// RoleNames returns the configured role names, sorted.
func (c *Config) RoleNames() []string {
	names := make([]string, 0, len(c.Roles))
	for n := range c.Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// roleNameRe keeps role names usable in both a label key
// (network-policy/role_<name>) and a policy name (pni-role-<name>).
var roleNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// maxRoleName keeps "pni-role-<name>" within a DNS-1123 label.
const maxRoleName = 63 - len("pni-role-")

// Validate checks every field and returns all problems, each with its path.
func (c *Config) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, check := range []func(failer){
		c.checkNamespaces, c.checkDNS, c.checkKubeAPI, c.checkWorkloads,
		c.checkIngressController, c.checkRoles, c.checkInternet, c.checkProjectPeers, c.checkModes,
	} {
		check(fail)
	}
	errs = append(errs, c.flowsErrors()...)
	return errors.Join(errs...)
}

// failer records a problem with a field.
type failer func(field, format string, args ...any)

// checkNamespaces checks the System project and the exempt namespaces.
func (c *Config) checkNamespaces(fail failer) {
	if c.SystemProject != "" {
		if strings.Contains(c.SystemProject, ":") {
			fail("systemProject", "%q looks like a namespace annotation (cluster:project); give the project part only, e.g. p-b6jcw", c.SystemProject)
		} else if msgs := validation.IsValidLabelValue(c.SystemProject); len(msgs) > 0 {
			fail("systemProject", "%q is not a project ID such as p-b6jcw: %s", c.SystemProject, strings.Join(msgs, "; "))
		}
	}
	for i, p := range c.ExemptNamespaces {
		if err := checkPattern(p, validation.IsDNS1123Label); err != nil {
			fail(fmt.Sprintf("exemptNamespaces[%d]", i), "%v", err)
		}
		if p == "*" && !c.AllowExemptAll {
			fail(fmt.Sprintf("exemptNamespaces[%d]", i), `"*" exempts every namespace, which turns isolation off everywhere; if that is meant, also set allowExemptAll: true`)
		}
	}
	if c.AllowExemptAll && !slices.Contains(c.ExemptNamespaces, "*") {
		// A confirmation left behind would let a later "*" through unasked.
		fail("allowExemptAll", `is only read when exemptNamespaces holds "*"; remove it`)
	}
}

// checkDNS checks how DNS is allowed.
func (c *Config) checkDNS(fail failer) {
	switch c.DNS.Mode {
	case DNSCluster:
		if msgs := validation.IsDNS1123Label(c.DNS.Namespace); len(msgs) > 0 {
			fail("dns.namespace", "%q is not a namespace name: %s", c.DNS.Namespace, strings.Join(msgs, "; "))
		}
		if len(c.DNS.PodLabels) == 0 {
			fail("dns.podLabels", "must select the DNS pods, e.g. {k8s-app: kube-dns}; an empty set would allow DNS to every pod of dns.namespace")
		}
		checkLabels("dns.podLabels", c.DNS.PodLabels, fail)
	case DNSAny:
	default:
		fail("dns.mode", "%q is not a DNS mode; use %q (the cluster DNS pods) or %q (any address)", c.DNS.Mode, DNSCluster, DNSAny)
	}
	checkPort("dns.port", c.DNS.Port, fail)
}

// checkKubeAPI checks how the Kubernetes API is matched.
func (c *Config) checkKubeAPI(fail failer) {
	checkPort("kubeAPI.port", c.KubeAPI.Port, fail)
	for i, cidr := range c.KubeAPI.ExtraCIDRs {
		checkCIDR(fmt.Sprintf("kubeAPI.extraCIDRs[%d]", i), cidr, fail)
	}
	if _, err := cron.ParseStandard(c.KubeAPI.RefreshSchedule); err != nil {
		fail("kubeAPI.refreshSchedule", "%q is not a cron schedule such as \"*/5 * * * *\": %v", c.KubeAPI.RefreshSchedule, err)
	}

	switch c.KubeAPI.Mode {
	case KubeAPIAuto, KubeAPIAddresses, KubeAPIService, KubeAPIBoth:
	default:
		fail("kubeAPI.mode", "%q: use %q, %q, %q or %q", c.KubeAPI.Mode, KubeAPIAuto, KubeAPIAddresses, KubeAPIService, KubeAPIBoth)
	}
}

// checkWorkloads checks the Rancher agent, monitoring and logging service accounts.
func (c *Config) checkWorkloads(fail failer) {
	families := []struct {
		name string
		list []Workloads
	}{{"rancherAgent", c.RancherAgent}, {"monitoring", c.Monitoring}, {"logging", c.Logging}}
	for _, family := range families {
		for i, w := range family.list {
			field := fmt.Sprintf("%s[%d]", family.name, i)
			if err := checkPattern(w.Namespace, validation.IsDNS1123Label); err != nil {
				fail(field+".namespace", "%v", err)
			}
			if len(w.ServiceAccounts) == 0 {
				fail(field+".serviceAccounts", "must name at least one service account (a pattern with one '*' is allowed)")
			}
			for j, sa := range w.ServiceAccounts {
				if err := checkPattern(sa, validation.IsDNS1123Subdomain); err != nil {
					fail(fmt.Sprintf("%s.serviceAccounts[%d]", field, j), "%v", err)
				}
			}
		}
	}
}

// checkIngressController checks the ingress controller exception.
func (c *Config) checkIngressController(fail failer) {
	if ic := c.IngressController; ic.Enabled {
		if len(ic.NamespaceLabels) == 0 {
			fail("ingressController.namespaceLabels", "must name the labels of the controller's namespace, e.g. {ingress: nginx}, or set ingressController.enabled to false")
		}
		if len(ic.BackendLabels) == 0 {
			fail("ingressController.backendLabels", "must name the labels of backend namespaces, e.g. {network-policy/ingress: nginx}, or set ingressController.enabled to false")
		}
		checkLabels("ingressController.namespaceLabels", ic.NamespaceLabels, fail)
		checkLabels("ingressController.backendLabels", ic.BackendLabels, fail)
		checkPorts("ingressController.ports", ic.Ports, fail)
	}
}

// checkRoles checks the service roles.
func (c *Config) checkRoles(fail failer) {
	for _, name := range c.RoleNames() {
		r := c.Roles[name]
		field := "roles." + name
		if !roleNameRe.MatchString(name) || len(name) > maxRoleName {
			fail(field, "role names must be lower-case letters, digits and '-', at most %d characters (they appear in the label %s<name> and the policy name pni-role-<name>)", maxRoleName, RoleLabelPrefix)
		}
		switch r.Protocol {
		case "TCP", "UDP", "SCTP":
		default:
			fail(field+".protocol", "%q is not TCP, UDP or SCTP", r.Protocol)
		}
		checkPorts(field+".ports", r.Ports, fail)
		switch r.Consumers {
		case ConsumersAny, ConsumersSameProject:
			if len(r.Projects) > 0 {
				fail(field+".projects", "is only read when consumers is %q", ConsumersProjects)
			}
		case ConsumersProjects:
			if len(r.Projects) == 0 {
				fail(field+".projects", "must list the projects that may consume the role (consumers: %s)", ConsumersProjects)
			}
			for i, p := range r.Projects {
				checkProjectID(fmt.Sprintf("%s.projects[%d]", field, i), p, fail)
			}
		default:
			fail(field+".consumers", "%q: use %q, %q or %q", r.Consumers, ConsumersAny, ConsumersSameProject, ConsumersProjects)
		}
	}
}

// checkInternet checks the internet label and its ranges.
func (c *Config) checkInternet(fail failer) {
	if c.Internet.Enabled {
		if msgs := validation.IsQualifiedName(c.Internet.Label); len(msgs) > 0 {
			fail("internet.label", "%q is not a label key: %s", c.Internet.Label, strings.Join(msgs, "; "))
		}
		if len(c.Internet.ExcludeCIDRs) == 0 {
			fail("internet.excludeCIDRs", "must list at least the cluster's pod and service ranges, or pods could reach unisolated pods as if they were the internet")
		}
		for i, cidr := range c.Internet.ExcludeCIDRs {
			checkCIDR(fmt.Sprintf("internet.excludeCIDRs[%d]", i), cidr, fail)
		}
	}
}

// checkProjectPeers checks the cross-project allow lists.
func (c *Config) checkProjectPeers(fail failer) {
	for i, peer := range c.ProjectPeers {
		field := fmt.Sprintf("projectPeers[%d]", i)
		checkProjectID(field+".project", peer.Project, fail)
		if len(peer.From) == 0 {
			fail(field+".from", "must list the projects %s accepts traffic from", peer.Project)
		}
		for j, p := range peer.From {
			checkProjectID(fmt.Sprintf("%s.from[%d]", field, j), p, fail)
			if p == peer.Project {
				fail(fmt.Sprintf("%s.from[%d]", field, j), "%s is the project itself, which always accepts its own traffic", p)
			}
		}
		if len(peer.Ports) > 0 {
			checkPorts(field+".ports", peer.Ports, fail)
			switch peer.Protocol {
			case "TCP", "UDP", "SCTP":
			default:
				fail(field+".protocol", "%q is not TCP, UDP or SCTP", peer.Protocol)
			}
		} else if peer.Protocol != "" {
			fail(field+".protocol", "is only read with ports; without ports every protocol is allowed")
		}
	}
}

// checkModes checks enforcement, rollout, the project lists and the tier.
func (c *Config) checkModes(fail failer) {
	switch c.Enforcement {
	case EnforcementAuto, EnforcementTier, EnforcementDefaultTier:
	default:
		fail("enforcement", "%q: use %q (calico-pni's own tier, Calico 3.29 and later), %q (the default tier) or %q (tier when Calico is 3.29 or later)", c.Enforcement, EnforcementTier, EnforcementDefaultTier, EnforcementAuto)
	}
	switch c.Rollout {
	case RolloutEnforce, RolloutStage:
	default:
		fail("rollout", "%q: use %q or %q (staged policies only, Calico 3.30 and later)", c.Rollout, RolloutEnforce, RolloutStage)
	}
	for _, list := range []struct {
		field string
		ids   []string
	}{{"projects.enforce", c.Projects.Enforce}, {"projects.stage", c.Projects.Stage}} {
		for i, id := range list.ids {
			if id != AllProjects {
				checkProjectID(fmt.Sprintf("%s[%d]", list.field, i), id, fail)
			}
		}
	}
	for i, id := range c.Projects.Stage {
		if slices.Contains(c.Projects.Enforce, id) {
			fail(fmt.Sprintf("projects.stage[%d]", i), "%q is in projects.enforce too; name each project in one list", id)
		}
	}
	if c.Tier.Order <= 0 || c.Tier.Order >= 1_000_000 {
		fail("tier.order", "%v: must lie between 0 and the default tier's 1,000,000, so that the walls come before tenants' policies", c.Tier.Order)
	}
}

func checkProjectID(field, id string, fail failer) {
	if msgs := validation.IsDNS1123Label(id); len(msgs) > 0 || id == "" {
		fail(field, "%q is not a project ID such as p-b6jcw", id)
	}
}

func checkCIDR(field, cidr string, fail failer) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		fail(field, "%q is not a CIDR; write an address as 10.0.0.5/32 or fd00::5/128", cidr)
	} else if p != p.Masked() {
		fail(field, "%q has host bits set; write %s", cidr, p.Masked())
	}
}

func checkPort(field string, port int, fail failer) {
	if port < 1 || port > 65535 {
		fail(field, "%d is not a port number 1-65535", port)
	}
}

func checkPorts(field string, ports []calico.Port, fail failer) {
	if len(ports) == 0 {
		fail(field, "must list at least one port; calico-pni does not guess ports")
	}
	for i, p := range ports {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case p.Name != "":
			if msgs := validation.IsValidPortName(p.Name); len(msgs) > 0 {
				fail(f, "%q is not a port number, a range \"min:max\" or a port name: %s", p.Name, strings.Join(msgs, "; "))
			}
		case p.Min == 0:
			fail(f, "0 is not a port number 1-65535")
		case p.Min > p.Max:
			fail(f, "range %s runs backwards; write %d:%d", p, p.Max, p.Min)
		}
	}
}

func checkLabels(field string, labels map[string]string, fail failer) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			fail(field, "%q is not a label key: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			fail(field+"."+k, "%q is not a label value: %s", labels[k], strings.Join(msgs, "; "))
		}
	}
}

// checkPattern accepts a name, or a pattern with one '*' whose literal
// parts could be part of such a name.
func checkPattern(p string, valid func(string) []string) error {
	if p == "" {
		return fmt.Errorf("must not be empty")
	}
	if strings.Count(p, "*") > 1 {
		return fmt.Errorf("%q has more than one '*'", p)
	}
	if p == "*" {
		return nil
	}
	// Stand in a letter for the '*' and check the name it could be.
	if msgs := valid(strings.Replace(p, "*", "x", 1)); len(msgs) > 0 {
		return fmt.Errorf("%q is not a name or a pattern of one: %s", p, strings.Join(msgs, "; "))
	}
	return nil
}
