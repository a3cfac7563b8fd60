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
			c.Roles[name] = r
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
	}

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

	checkPort("kubeAPI.port", c.KubeAPI.Port, fail)
	for i, cidr := range c.KubeAPI.ExtraCIDRs {
		field := fmt.Sprintf("kubeAPI.extraCIDRs[%d]", i)
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			fail(field, "%q is not a CIDR; write an address as 10.0.0.5/32 or fd00::5/128", cidr)
		} else if p != p.Masked() {
			fail(field, "%q has host bits set; write %s", cidr, p.Masked())
		}
	}
	if _, err := cron.ParseStandard(c.KubeAPI.RefreshSchedule); err != nil {
		fail("kubeAPI.refreshSchedule", "%q is not a cron schedule such as \"*/5 * * * *\": %v", c.KubeAPI.RefreshSchedule, err)
	}

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
	}
	return errors.Join(errs...)
}

func checkPort(field string, port int, fail func(string, string, ...any)) {
	if port < 1 || port > 65535 {
		fail(field, "%d is not a port number 1-65535", port)
	}
}

func checkPorts(field string, ports []calico.Port, fail func(string, string, ...any)) {
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

func checkLabels(field string, labels map[string]string, fail func(string, string, ...any)) {
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
