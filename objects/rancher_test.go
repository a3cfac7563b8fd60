package objects

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/calico-pni/calico-pni/rancher"
)

// TestReadRancherIsolation: the reader knows the NetworkPolicies of
// Rancher's isolation by their label, names each by its role, keeps their
// labels on the evaluator's policy, and takes nobody else's for Rancher's.
func TestReadRancherIsolation(t *testing.T) {
	path := filepath.Join("..", "testdata", "article-rancher-isolation.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader()
	if err := r.ReadFile(path, data); err != nil {
		t.Fatal(err)
	}
	set := r.Finish()
	// The fixture: 4 System namespaces with np-default-allow-all, 9
	// namespaces with a project label outside it with np-default and
	// hn-nodes, np-web, and two hp-<pod> in ingress-nginx.
	roles := map[rancher.IsolationRole]int{}
	for _, iso := range set.Rancher {
		roles[iso.Role]++
	}
	want := map[rancher.IsolationRole]int{rancher.RoleSystemAllowAll: 4, rancher.RoleProjectDefault: 9, rancher.RoleHostNetwork: 9, rancher.RoleNodePorts: 1, rancher.RoleHostPorts: 2}
	if len(roles) != len(want) {
		t.Errorf("roles %v, want %v", roles, want)
	}
	for role, n := range want {
		if roles[role] != n {
			t.Errorf("%d policies in role %s, want %d (all: %v)", roles[role], role, n, roles)
		}
	}
	if iso := set.Rancher["shop/knp.default.np-default"]; iso.Project != "p-b6jcw" || iso.SystemProject != "p-7xq2n" {
		t.Errorf("shop's np-default: %+v", iso)
	}
	users := 0
	for _, p := range set.Cluster.Policies {
		_, named := set.Rancher[p.String()]
		if named != rancher.IsRancherPolicy(p.Labels) {
			t.Errorf("%s: named %v, labels %v", p.String(), named, p.Labels)
		}
		if !named {
			users++
		}
	}
	if users != 5 {
		t.Errorf("%d policies of the users, want the fixture's 5", users)
	}
}
