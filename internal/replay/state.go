package replay

import (
	"fmt"
	"maps"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// API groups of the objects a State holds.
const (
	groupCalicoV1   = "crd.projectcalico.org"
	groupCalicoV3   = "projectcalico.org"
	groupNetworking = "networking.k8s.io"
	groupDiscovery  = "discovery.k8s.io"
)

// Calico resources, in both Calico API groups, that decide connections
// (staged policies are kept, never enforced).
var calicoResources = []string{
	"globalnetworkpolicies", "networkpolicies", "stagedglobalnetworkpolicies", "stagednetworkpolicies",
	"stagedkubernetesnetworkpolicies", "tiers", "globalnetworksets", "networksets",
}

// Calico resources that decide no connection of pods: a write to them
// changes no State.
var calicoIgnored = map[string]bool{
	"clusterinformations": true, "felixconfigurations": true, "kubecontrollersconfigurations": true,
	"ippools": true, "ipreservations": true, "ipamblocks": true, "ipamhandles": true, "ipamconfigs": true,
	"blockaffinities": true, "bgpconfigurations": true, "bgppeers": true, "bgpfilters": true,
	"caliconodestatuses": true,
}

// Key names a stored object: its API group, plural resource, namespace
// ("" for a cluster-scoped one) and name.
type Key struct {
	Group, Resource, Namespace, Name string
}

func (k Key) String() string {
	if k.Namespace != "" {
		return fmt.Sprintf("%s.%s %s/%s", k.Resource, k.Group, k.Namespace, k.Name)
	}
	return fmt.Sprintf("%s.%s %s", k.Resource, k.Group, k.Name)
}

// State is what decides connections at one moment: the namespaces and
// their labels, and the stored Calico objects, Kubernetes
// NetworkPolicies and EndpointSlices. Objects are never changed in place
// (Apply replaces them), so that clones may share them.
type State struct {
	Namespaces map[string]map[string]string
	Objects    map[Key]*unstructured.Unstructured
}

// NewState returns an empty State.
func NewState() *State {
	return &State{Namespaces: map[string]map[string]string{}, Objects: map[Key]*unstructured.Unstructured{}}
}

// Clone returns a copy that Apply may change without changing s.
func (s *State) Clone() *State {
	return &State{Namespaces: maps.Clone(s.Namespaces), Objects: maps.Clone(s.Objects)}
}

// Add puts an object into the state as the API server would store it
// (a Namespace by its labels), by its apiVersion and kind.
func (s *State) Add(u *unstructured.Unstructured) error {
	if u.GetKind() == "Namespace" {
		s.Namespaces[u.GetName()] = maps.Clone(u.GetLabels())
		return nil
	}
	group, _, _ := strings.Cut(u.GetAPIVersion(), "/")
	resource, ok := resourceOfKind[u.GetKind()]
	if !ok || !holds(group, resource) {
		return fmt.Errorf("%s %s: a State holds Namespaces, Calico policies, tiers and network sets, Kubernetes NetworkPolicies and EndpointSlices", u.GetAPIVersion(), u.GetKind())
	}
	s.Objects[Key{Group: group, Resource: resource, Namespace: u.GetNamespace(), Name: u.GetName()}] = u
	return nil
}

var resourceOfKind = map[string]string{
	"GlobalNetworkPolicy": "globalnetworkpolicies", "NetworkPolicy": "networkpolicies",
	"StagedGlobalNetworkPolicy": "stagedglobalnetworkpolicies", "StagedNetworkPolicy": "stagednetworkpolicies",
	"StagedKubernetesNetworkPolicy": "stagedkubernetesnetworkpolicies", "Tier": "tiers",
	"GlobalNetworkSet": "globalnetworksets", "NetworkSet": "networksets", "EndpointSlice": "endpointslices",
}

// holds says whether a State keeps objects of a group and resource.
func holds(group, resource string) bool {
	switch group {
	case groupCalicoV1, groupCalicoV3:
		for _, r := range calicoResources {
			if r == resource {
				return true
			}
		}
	case groupNetworking:
		return resource == "networkpolicies"
	case groupDiscovery:
		return resource == "endpointslices"
	}
	return false
}

// Apply replays one committed write. Writes to what decides no
// connection (leases, Calico's IPAM and configuration, ...) change
// nothing; a write to something that would decide connections but is not
// modelled (a HostEndpoint, a collection delete) is an error.
func (s *State) Apply(w testbed.Write) error {
	resource, sub, _ := strings.Cut(w.Resource, "/")
	if w.APIGroup == "" && resource == "namespaces" {
		return s.applyNamespace(w)
	}
	switch {
	case w.Verb == "deletecollection" && holds(w.APIGroup, resource):
		return fmt.Errorf("%s: a collection delete is not replayed (the log does not say what it removed)", w)
	case holds(w.APIGroup, resource):
	case (w.APIGroup == groupCalicoV1 || w.APIGroup == groupCalicoV3) && !calicoIgnored[resource]:
		return fmt.Errorf("%s: Calico %s are not modelled", w, resource)
	default:
		return nil
	}
	if sub != "" && sub != "status" {
		return fmt.Errorf("%s: subresource %s is not replayed", w, sub)
	}
	key := Key{Group: w.APIGroup, Resource: resource, Namespace: w.Namespace, Name: w.Name}
	if removes(w) {
		delete(s.Objects, key)
		return nil
	}
	if w.Object == nil {
		return fmt.Errorf("%s: the audit log has no stored object", w)
	}
	s.Objects[key] = w.Object
	return nil
}

// applyNamespace replays a write of a namespace, its status or its
// finalize. A namespace being deleted keeps its labels until it is gone:
// Felix sees it, and its pods, until then.
func (s *State) applyNamespace(w testbed.Write) error {
	if removes(w) {
		delete(s.Namespaces, w.Name)
		return nil
	}
	if w.Object == nil {
		return fmt.Errorf("%s: the audit log has no stored object", w)
	}
	s.Namespaces[w.Name] = maps.Clone(w.Object.GetLabels())
	return nil
}

// LoadState reads a State from files of Kubernetes objects (as `kubectl
// get -o yaml` prints them, Lists expanded); see AddObjects.
func LoadState(paths ...string) (*State, error) {
	s := NewState()
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		objs, err := testbed.DecodeObjects(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := s.AddObjects(objs); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return s, nil
}

// AddObjects adds objects as files hold them. A Namespace read again adds
// its labels to the first one's, so that the output of `calico-pni
// render` (calico-pni's labels) completes a cluster file. Objects a State
// does not hold (pods, nodes, services, Calico's configuration) are
// left out; a HostEndpoint, which the evaluator does not model, is an
// error.
func (s *State) AddObjects(objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		switch kind := u.GetKind(); {
		case kind == "Namespace":
			l := s.Namespaces[u.GetName()]
			if l == nil {
				l = map[string]string{}
			}
			maps.Copy(l, u.GetLabels())
			s.Namespaces[u.GetName()] = l
		case kind == "HostEndpoint":
			return fmt.Errorf("HostEndpoint %s: host endpoints are not modelled", u.GetName())
		case resourceOfKind[kind] != "":
			if err := s.Add(u); err != nil {
				return err
			}
		}
	}
	return nil
}
