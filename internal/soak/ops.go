package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/policies"
)

// operation is one random change or fault. apply returns what it did, in
// words, for the log and for a failure's replay.
type operation struct {
	name   string
	fault  bool
	weight int
	apply  func(s *soak) (string, error)
}

var operations = []operation{
	{"move a namespace", false, 14, (*soak).moveNamespace},
	{"move several namespaces at once", false, 6, (*soak).moveSeveral},
	{"swap two namespaces' projects", false, 4, (*soak).swapProjects},
	{"move into or out of the System project", false, 4, (*soak).moveSystem},
	{"uninstall (cleanup) and install again", false, 2, (*soak).cleanup},
	{"interrupt a cleanup", true, 2, (*soak).interruptCleanup},
	{"create a namespace", false, 6, (*soak).createNamespace},
	{"delete a namespace", false, 4, (*soak).deleteNamespace},
	{"change the nodes", false, 8, (*soak).changeNodes},
	{"opt a namespace out or in", false, 6, (*soak).toggleOptOut},
	{"toggle the internet label", false, 5, (*soak).toggleInternet},
	{"change the configuration", false, 14, (*soak).changeConfig},
	{"restart the API server", true, 6, (*soak).restartAPIServer},
	{"kill the leader", true, 7, (*soak).killLeader},
	{"edit a calico-pni policy", true, 6, (*soak).tamperSpec},
	{"delete a calico-pni policy", true, 5, (*soak).tamperDelete},
	{"change calico-pni's namespace labels", true, 5, (*soak).tamperLabels},
}

func (s *soak) pick() operation {
	total := 0
	for _, o := range operations {
		total += o.weight
	}
	n := s.r.IntN(total)
	for _, o := range operations {
		if n < o.weight {
			return o
		}
		n -= o.weight
	}
	return operations[0]
}

func (s *soak) userNamespaces() ([]corev1.Namespace, error) {
	list, err := s.op.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Namespace
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil && (strings.HasPrefix(ns.Name, "ns-") || strings.HasPrefix(ns.Name, "soak-")) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (s *soak) setProject(ns *corev1.Namespace, project string) error {
	ns.Labels["field.cattle.io/projectId"] = project
	ns.Annotations["field.cattle.io/projectId"] = synthetic.ClusterID + ":" + project
	_, err := s.op.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{})
	return err
}

// otherProject picks a project other than current, a new one one time in
// five.
func (s *soak) otherProject(current string) string {
	if s.r.IntN(5) == 0 {
		s.nextProj++
		p := fmt.Sprintf("p-soak%d", s.nextProj)
		s.projects = append(s.projects, p)
		return p
	}
	for {
		p := s.projects[s.r.IntN(len(s.projects))]
		if p != current || len(s.projects) == 1 {
			return p
		}
	}
}

// moveNamespace moves one namespace to another project, as Rancher does
// (one write: annotation and label). One time in four it picks the last
// namespace of the smallest project, which empties that project.
func (s *soak) moveNamespace() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil || len(nss) == 0 {
		return "none", err
	}
	ns := nss[s.r.IntN(len(nss))]
	if s.r.IntN(4) == 0 {
		count := map[string]int{}
		for _, n := range nss {
			count[n.Labels["field.cattle.io/projectId"]]++
		}
		for _, n := range nss {
			if count[n.Labels["field.cattle.io/projectId"]] < count[ns.Labels["field.cattle.io/projectId"]] {
				ns = n
			}
		}
	}
	to := s.otherProject(ns.Labels["field.cattle.io/projectId"])
	return fmt.Sprintf("%s to %s", ns.Name, to), s.setProject(&ns, to)
}

func (s *soak) createNamespace() (string, error) {
	s.nextNS++
	name := fmt.Sprintf("soak-%d", s.nextNS)
	project := s.projects[s.r.IntN(len(s.projects))]
	labels := map[string]string{"field.cattle.io/projectId": project}
	switch s.r.IntN(4) {
	case 0:
		labels["network-policy/role_redis"] = "true"
	case 1:
		labels["network-policy/allow_redis"] = "true"
	case 2:
		labels["network-policy/ingress"] = "nginx"
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels,
		Annotations: map[string]string{"field.cattle.io/projectId": synthetic.ClusterID + ":" + project}}}
	if _, err := s.op.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	s.created = append(s.created, name)
	return fmt.Sprintf("%s in %s", name, project), nil
}

func (s *soak) deleteNamespace() (string, error) {
	if len(s.created) == 0 {
		return s.createNamespace()
	}
	i := s.r.IntN(len(s.created))
	name := s.created[i]
	s.created = slices.Delete(s.created, i, i+1)
	return name, s.e.DeleteNamespace(context.Background(), name)
}

func (s *soak) changeNodes() (string, error) {
	ctx := context.Background()
	switch {
	case len(s.soakNodes) > 0 && s.r.IntN(3) == 0:
		i := s.r.IntN(len(s.soakNodes))
		name := s.soakNodes[i]
		s.soakNodes = slices.Delete(s.soakNodes, i, i+1)
		return "remove " + name, s.op.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	case s.r.IntN(2) == 0:
		// A new tunnel address on an existing node.
		name := fmt.Sprintf("node-%03d", s.r.IntN(s.o.Nodes))
		addr := netip.AddrFrom4([4]byte{10, 42, byte(100 + s.r.IntN(100)), byte(1 + s.r.IntN(250))})
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"projectcalico.org/IPv4VXLANTunnelAddr":%q}}}`, addr)
		_, err := s.op.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return fmt.Sprintf("readdress %s (%s)", name, addr), err
	}
	s.nextNode++
	name := fmt.Sprintf("soak-node-%d", s.nextNode)
	addr := netip.AddrFrom4([4]byte{10, 99, byte(s.nextNode / 250), byte(s.nextNode%250 + 1)}).String()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}}}
	s.soakNodes = append(s.soakNodes, name)
	return "add " + name + " " + addr, s.createNode(n)
}

func (s *soak) patchNamespace(name, patch string) error {
	_, err := s.op.CoreV1().Namespaces().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func (s *soak) toggleOptOut() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil || len(nss) == 0 {
		return "none", err
	}
	ns := nss[s.r.IntN(len(nss))]
	if _, out := ns.Annotations[config.IsolationAnnotation]; out {
		return ns.Name + " back in", s.patchNamespace(ns.Name, fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, config.IsolationAnnotation))
	}
	return ns.Name + " out", s.patchNamespace(ns.Name, fmt.Sprintf(`{"metadata":{"annotations":{%q:"disabled"}}}`, config.IsolationAnnotation))
}

func (s *soak) toggleInternet() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil || len(nss) == 0 {
		return "none", err
	}
	ns := nss[s.r.IntN(len(nss))]
	label := s.cfg.Internet.Label
	if _, ok := ns.Labels[label]; ok {
		return ns.Name + " loses it", s.patchNamespace(ns.Name, fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, label))
	}
	return ns.Name + " gets it", s.patchNamespace(ns.Name, fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, label))
}

// changeConfig changes one setting that adds or removes a class of
// policy, or changes the selection or rules of one.
func (s *soak) changeConfig() (string, error) {
	c := s.cfg
	changes := []func() string{
		func() string {
			c.IsolateEgress = !c.IsolateEgress
			return fmt.Sprintf("isolateEgress %v", c.IsolateEgress)
		},
		func() string {
			c.IngressController.Enabled = !c.IngressController.Enabled
			return fmt.Sprintf("ingressController.enabled %v", c.IngressController.Enabled)
		},
		func() string {
			c.Internet.Enabled = !c.Internet.Enabled
			return fmt.Sprintf("internet.enabled %v", c.Internet.Enabled)
		},
		func() string {
			c.HostNetwork.Enabled = !c.HostNetwork.Enabled
			return fmt.Sprintf("hostNetwork.enabled %v", c.HostNetwork.Enabled)
		},
		func() string {
			r := c.Roles["redis"]
			r.Consumers = map[string]string{config.ConsumersAny: config.ConsumersSameProject, config.ConsumersSameProject: config.ConsumersAny}[r.Consumers]
			c.Roles["redis"] = r
			return "roles.redis.consumers " + r.Consumers
		},
		func() string {
			// Another monitoring namespace: the policies it selects change.
			if len(c.Monitoring) > 1 {
				c.Monitoring = c.Monitoring[:1]
				return "monitoring: one entry"
			}
			c.Monitoring = append(c.Monitoring, config.Workloads{Namespace: "soak-monitoring", ServiceAccounts: []string{"prometheus"}})
			return "monitoring: two entries"
		},
		func() string {
			c.IsolateUnassigned = !c.IsolateUnassigned
			return fmt.Sprintf("isolateUnassigned %v", c.IsolateUnassigned)
		},
	}
	if s.tiers() {
		changes = append(changes, func() string {
			c.Enforcement = map[string]string{config.EnforcementAuto: config.EnforcementDefaultTier, config.EnforcementDefaultTier: config.EnforcementTier, config.EnforcementTier: config.EnforcementAuto}[c.Enforcement]
			return "enforcement " + c.Enforcement
		})
	}
	if s.staged() {
		changes = append(changes, func() string {
			p := s.projects[s.r.IntN(len(s.projects))]
			if i := slices.Index(c.Projects.Stage, p); i >= 0 {
				c.Projects.Stage = slices.Delete(c.Projects.Stage, i, i+1)
				return "projects.stage without " + p
			}
			c.Projects.Stage = append(c.Projects.Stage, p)
			return "projects.stage with " + p
		})
	}
	what := changes[s.r.IntN(len(changes))]()
	if err := c.Validate(); err != nil {
		return what, err
	}
	return what, s.writeConfig()
}

func (s *soak) tiers() bool {
	v, _ := calico.ParseVersion(s.o.CalicoVersion)
	return v.AtLeast(3, 29)
}

func (s *soak) staged() bool {
	v, _ := calico.ParseVersion(s.o.CalicoVersion)
	return v.AtLeast(3, 30)
}

// restartAPIServer stops kube-apiserver (etcd keeps the data), changes
// nothing for a moment, and starts it again; then a change follows that
// the replicas must see through their new watches.
func (s *soak) restartAPIServer() (string, error) {
	if err := s.e.StopAPIServer(); err != nil {
		return "", err
	}
	time.Sleep(time.Duration(300+s.r.IntN(1200)) * time.Millisecond)
	if err := s.e.StartAPIServer(); err != nil {
		return "", err
	}
	what, err := s.moveNamespace()
	return "then " + what, err
}

// killLeader kills the leader's process (no lease release), changes the
// cluster while no replica leads, and starts the killed replica again.
func (s *soak) killLeader() (string, error) {
	leader := s.leader()
	p := s.procs[leader]
	if p == nil {
		return "no leader", nil
	}
	p.kill()
	what, err := s.moveNamespace()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, then %s", leader, what), s.startReplica(leader)
}

// managedPolicies lists calico-pni's policies (not its hold-open ones).
func (s *soak) managedPolicies() ([]unstructured.Unstructured, calico.API, error) {
	api, err := s.api()
	if err != nil {
		return nil, api, err
	}
	list, err := s.intrDyn.Resource(api.Resource("GlobalNetworkPolicy")).List(context.Background(), metav1.ListOptions{LabelSelector: calico.ManagedByLabel + "=" + calico.ManagedByValue})
	if err != nil {
		return nil, api, err
	}
	var out []unstructured.Unstructured
	for _, u := range list.Items {
		if u.GetLabels()[calico.ClassLabel] != string(calico.ClassHold) {
			out = append(out, u)
		}
	}
	return out, api, nil
}

// tamperSpec is a second writer editing one of calico-pni's policies: its
// first rule goes, or its namespaces selector changes.
func (s *soak) tamperSpec() (string, error) {
	list, api, err := s.managedPolicies()
	if err != nil || len(list) == 0 {
		return "none", err
	}
	u := list[s.r.IntN(len(list))]
	spec, _ := u.Object["spec"].(map[string]any)
	what := "namespaceSelector"
	if rules, ok := spec["ingress"].([]any); ok && len(rules) > 0 {
		spec["ingress"], what = rules[1:], "first ingress rule"
	} else if rules, ok := spec["egress"].([]any); ok && len(rules) > 0 {
		spec["egress"], what = rules[1:], "first egress rule"
	} else {
		spec["namespaceSelector"] = "has(soak-tampered)"
	}
	_, err = s.intrDyn.Resource(api.Resource("GlobalNetworkPolicy")).Update(context.Background(), &u, metav1.UpdateOptions{})
	return fmt.Sprintf("%s of %s", what, u.GetName()), err
}

// tamperDelete is a second writer deleting one of calico-pni's policies.
func (s *soak) tamperDelete() (string, error) {
	list, api, err := s.managedPolicies()
	if err != nil || len(list) == 0 {
		return "none", err
	}
	u := list[s.r.IntN(len(list))]
	return u.GetName(), s.intrDyn.Resource(api.Resource("GlobalNetworkPolicy")).Delete(context.Background(), u.GetName(), metav1.DeleteOptions{})
}

// tamperLabels is a second writer removing calico-pni's isolated label
// from a namespace, or setting it on one calico-pni leaves open.
func (s *soak) tamperLabels() (string, error) {
	ctx := context.Background()
	list, err := s.intr.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		return "none", err
	}
	ns := list.Items[s.r.IntN(len(list.Items))]
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, policies.IsolatedLabel)
	what := "isolated label set on " + ns.Name
	if ns.Labels[policies.IsolatedLabel] == "true" {
		patch = fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, policies.IsolatedLabel)
		what = "isolated label removed from " + ns.Name
	}
	_, err = s.intr.CoreV1().Namespaces().Patch(ctx, ns.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return what, err
}

// moveSeveral moves two to four namespaces at once, each to another
// project (a new one, or one the others go to), written in parallel so
// that one pass of the daemon sees them all.
func (s *soak) moveSeveral() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil || len(nss) < 2 {
		return "none", err
	}
	s.r.Shuffle(len(nss), func(i, j int) { nss[i], nss[j] = nss[j], nss[i] })
	nss = nss[:min(len(nss), 2+s.r.IntN(3))]
	target := s.otherProject("")
	moves := map[string]string{}
	for i := range nss {
		to := target
		if s.r.IntN(3) == 0 {
			to = s.otherProject(nss[i].Labels["field.cattle.io/projectId"])
		}
		moves[nss[i].Name] = to
	}
	return describeMoves(moves), s.setProjects(nss, moves)
}

// swapProjects exchanges the projects of two namespaces of different
// projects, both written at once.
func (s *soak) swapProjects() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil {
		return "", err
	}
	s.r.Shuffle(len(nss), func(i, j int) { nss[i], nss[j] = nss[j], nss[i] })
	for i := range nss {
		for j := i + 1; j < len(nss); j++ {
			pi, pj := nss[i].Labels["field.cattle.io/projectId"], nss[j].Labels["field.cattle.io/projectId"]
			if pi != pj {
				moves := map[string]string{nss[i].Name: pj, nss[j].Name: pi}
				return describeMoves(moves), s.setProjects([]corev1.Namespace{nss[i], nss[j]}, moves)
			}
		}
	}
	return "none", nil
}

// moveSystem moves a namespace into the System project, or one the soak
// moved there back out, as an admin moving a tool into it would.
func (s *soak) moveSystem() (string, error) {
	nss, err := s.userNamespaces()
	if err != nil || len(nss) == 0 {
		return "none", err
	}
	for _, ns := range nss {
		if ns.Labels["field.cattle.io/projectId"] == s.system {
			to := s.otherProject(s.system)
			return fmt.Sprintf("%s out of the System project to %s", ns.Name, to), s.setProject(&ns, to)
		}
	}
	ns := nss[s.r.IntN(len(nss))]
	return fmt.Sprintf("%s from %s into the System project", ns.Name, ns.Labels["field.cattle.io/projectId"]), s.setProject(&ns, s.system)
}

func describeMoves(moves map[string]string) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(moves)) {
		parts = append(parts, name+" to "+moves[name])
	}
	return strings.Join(parts, ", ")
}

// setProjects writes several moves in parallel: the namespaces were read
// first, so the writes land within a few milliseconds, well inside the
// replicas' debounce window.
func (s *soak) setProjects(nss []corev1.Namespace, moves map[string]string) error {
	var g errgroup.Group
	for i := range nss {
		ns := &nss[i]
		g.Go(func() error { return s.setProject(ns, moves[ns.Name]) })
	}
	return g.Wait()
}

// cleanup uninstalls as the chart's hook does: the replicas stop, then
// `calico-pni cleanup` runs to the end. The cleanup's writes are judged
// on their own (their end is a cluster without walls); the replicas then
// start again, and their cold start is the operation's second half.
func (s *soak) cleanup() (string, error) {
	s.stopReplicas()
	if err := s.runCleanup(-1); err != nil {
		return "", err
	}
	return "cleanup, then the replicas start again", s.afterCleanup("cleanup", released)
}

// interruptCleanup kills `calico-pni cleanup` after some of its writes,
// as a hook attempt that runs out of time; then either a second cleanup
// finishes the job or the replicas start again on the half-released
// cluster (an uninstall given up). Both must keep the promise.
func (s *soak) interruptCleanup() (string, error) {
	s.stopReplicas()
	nss, err := s.userNamespaces()
	if err != nil {
		return "", err
	}
	after := 1 + s.r.IntN(max(1, len(nss)))
	if err := s.runCleanup(after); err != nil {
		return "", err
	}
	what := fmt.Sprintf("cleanup killed after %d writes", after)
	if s.r.IntN(2) == 0 {
		return what + ", then the replicas start again", s.afterCleanup(what, halfway)
	}
	if err := s.afterCleanupHalf(what); err != nil {
		return "", err
	}
	if err := s.runCleanup(-1); err != nil {
		return "", err
	}
	what += ", a second cleanup"
	return what + ", then the replicas start again", s.afterCleanup(what, released)
}
