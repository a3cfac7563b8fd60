package policies

import (
	"testing"

	"github.com/calico-pni/calico-pni/config"
)

// TestGroupProjects: the projects and the System project come from the
// configuration (trustLabelOnly admits label-only namespaces;
// systemProject overrides the project of cattle-system or kube-system).
func TestGroupProjects(t *testing.T) {
	namespaces := []Namespace{
		{Name: "kube-system", Annotations: map[string]string{"field.cattle.io/projectId": "c-x:p-sys"}},
		{Name: "web", Annotations: map[string]string{"field.cattle.io/projectId": "c-x:p-web"}},
		{Name: "lab", Labels: map[string]string{"field.cattle.io/projectId": "p-lab"}},
	}
	tests := []struct {
		name        string
		cfg         func(*config.Config)
		lab, system string
	}{
		{"defaults", func(*config.Config) {}, "", "p-sys"},
		{"trustLabelOnly", func(c *config.Config) { c.TrustLabelOnly = true }, "p-lab", "p-sys"},
		{"systemProject", func(c *config.Config) { c.SystemProject = "p-web" }, "", "p-web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			tt.cfg(cfg)
			p := GroupProjects(cfg, namespaces)
			if got := p.Project("lab"); got != tt.lab {
				t.Errorf("lab in %q, want %q", got, tt.lab)
			}
			if p.Project("web") != "p-web" {
				t.Errorf("web in %q, want p-web", p.Project("web"))
			}
			if p.System != tt.system {
				t.Errorf("System project %q, want %q", p.System, tt.system)
			}
		})
	}
}
