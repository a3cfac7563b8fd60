// Package synthetic builds Rancher clusters of any size for calico-pni's
// benchmarks: namespaces spread unevenly over projects, a System project,
// service roles and their consumers, an ingress controller and its
// backends, and nodes with Calico's tunnel addresses. The same size always
// gives the same cluster.
package synthetic

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/policies"
)

// Size is the shape of a synthetic cluster.
type Size struct {
	Namespaces, Projects, Nodes int
}

// Cluster is a synthetic cluster as Kubernetes objects.
type Cluster struct {
	Namespaces []*corev1.Namespace
	Nodes      []*corev1.Node
	// SystemProject is the System project's ID.
	SystemProject string
	// Projects are the user projects' IDs.
	Projects []string
}

// ClusterID is the Rancher cluster ID of every synthetic cluster.
const ClusterID = "c-bench"

// ProjectID returns the ID of user project i.
func ProjectID(i int) string { return fmt.Sprintf("p-%05d", i) }

// New builds a cluster of the given size. Namespaces go to projects with a
// long tail (a few large projects, many small ones): project i gets a share
// proportional to 1/(i+1), each at least one namespace.
func New(size Size) *Cluster {
	r := rand.New(rand.NewPCG(uint64(size.Namespaces), uint64(size.Projects)))
	c := &Cluster{SystemProject: "p-sys00"}
	for i := range size.Projects {
		c.Projects = append(c.Projects, ProjectID(i))
	}
	for _, name := range []string{"kube-system", "cattle-system", "cattle-monitoring-system", "ingress-nginx"} {
		labels := map[string]string{}
		if name == "ingress-nginx" {
			labels["ingress"] = "nginx"
		}
		c.Namespaces = append(c.Namespaces, namespace(name, c.SystemProject, labels))
	}
	users := size.Namespaces - len(c.Namespaces)
	weights := make([]float64, size.Projects)
	total := 0.0
	for i := range weights {
		weights[i] = 1 / float64(i+1)
		total += weights[i]
	}
	n := 0
	for i, w := range weights {
		count := max(1, int(float64(users-size.Projects)*w/total)+1)
		for j := 0; j < count && n < users; j++ {
			c.Namespaces = append(c.Namespaces, userNamespace(r, n, c.Projects[i]))
			n++
		}
	}
	for ; n < users; n++ {
		c.Namespaces = append(c.Namespaces, userNamespace(r, n, c.Projects[r.IntN(size.Projects)]))
	}
	for i := range size.Nodes {
		c.Nodes = append(c.Nodes, node(i))
	}
	return c
}

func userNamespace(r *rand.Rand, n int, project string) *corev1.Namespace {
	labels := map[string]string{}
	switch x := r.IntN(100); {
	case x < 3:
		labels["network-policy/role_redis"] = "true"
	case x < 15:
		labels["network-policy/allow_redis"] = "true"
	case x < 40:
		labels["network-policy/ingress"] = "nginx"
	}
	return namespace(fmt.Sprintf("ns-%05d", n), project, labels)
}

func namespace(name, project string, labels map[string]string) *corev1.Namespace {
	labels["field.cattle.io/projectId"] = project
	labels["kubernetes.io/metadata.name"] = name
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: labels,
		// What Rancher's agent leaves on a namespace besides the project.
		Annotations: map[string]string{
			"field.cattle.io/projectId":                 ClusterID + ":" + project,
			"cattle.io/status":                          rancherStatus,
			"lifecycle.cattle.io/create.namespace-auth": "true",
			"management.cattle.io/no-default-sa-token":  "true",
			"field.cattle.io/resourceQuota":             "null",
		},
	}}
}

// rancherStatus is the kind of cattle.io/status annotation Rancher writes.
const rancherStatus = `{"Conditions":[{"Type":"ResourceQuotaInit","Status":"True","Message":"","LastUpdateTime":"2026-01-01T00:00:00Z"},{"Type":"InitialRolesPopulated","Status":"True","Message":"","LastUpdateTime":"2026-01-01T00:00:00Z"}]}`

// NodeAddress returns the internal address of node i with a variant, so
// that benchmarks can change it.
func NodeAddress(i, variant int) string {
	return netip.AddrFrom4([4]byte{10, byte(variant), byte(i / 250), byte(i%250 + 1)}).String()
}

func node(i int) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("node-%03d", i),
			Annotations: map[string]string{
				"projectcalico.org/IPv4Address":        NodeAddress(i, 0) + "/16",
				"projectcalico.org/IPv4IPIPTunnelAddr": netip.AddrFrom4([4]byte{10, 42, byte(i), 1}).String(),
			},
		},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: NodeAddress(i, 0)}}},
	}
}

// Snapshot returns the cluster as the generator reads it.
func (c *Cluster) Snapshot() policies.Snapshot {
	var s policies.Snapshot
	for _, ns := range c.Namespaces {
		s.Namespaces = append(s.Namespaces, policies.NamespaceFrom(ns))
	}
	for _, n := range c.Nodes {
		s.Nodes = append(s.Nodes, policies.NodeFrom(n))
	}
	return s
}
