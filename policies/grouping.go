package policies

import (
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/rancher"
)

// Projects is how calico-pni sorts namespaces into Rancher projects under
// a configuration: the generator builds its walls from it, and `matrix
// --by project` groups its rows with it, so that the groups a matrix shows
// are the projects calico-pni's policies wall off (trustLabelOnly and
// systemProject included).
type Projects struct {
	// Of holds each namespace's membership; a namespace in no project has
	// an empty Project.
	Of map[string]rancher.Membership
	// System is the System project ("" when there is none) and
	// SystemSource says where it was found.
	System, SystemSource string
}

// GroupProjects sorts the namespaces into projects as the generator does.
func GroupProjects(cfg *config.Config, namespaces []Namespace) Projects {
	p := Projects{Of: make(map[string]rancher.Membership, len(namespaces))}
	for _, ns := range namespaces {
		p.Of[ns.Name] = rancher.ProjectOf(ns.Labels, ns.Annotations, cfg.TrustLabelOnly)
	}
	p.System, p.SystemSource = rancher.SystemProject(cfg.SystemProject, func(name string) string {
		return p.Of[name].Project
	})
	return p
}

// Project is the project of a namespace, "" for none.
func (p Projects) Project(namespace string) string { return p.Of[namespace].Project }
