package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/plan"

	"github.com/calico-pni/calico-pni/cluster"
)

// recent remembers calico-pni's own writes until the informers have seen
// them. A pass that starts right after another would otherwise read caches
// that miss the last writes and make them again. An entry holds the
// resourceVersion the cache showed when the write was planned: while the
// cache still shows it, the written object stands in; once the cache shows
// anything else (the write itself, or a later change by someone), the
// entry is dropped and the cache is believed.
type recent struct {
	mu         sync.Mutex
	namespaces map[string]recentNamespace
	policies   map[string]recentPolicy
}

type recentNamespace struct {
	before string
	after  plan.Namespace
}

type recentPolicy struct {
	before string                     // "" when the policy did not exist
	after  *unstructured.Unstructured // nil when it was deleted
}

func newRecent() *recent {
	return &recent{namespaces: map[string]recentNamespace{}, policies: map[string]recentPolicy{}}
}

// NamespaceWritten remembers a write of a namespace (cluster.Memory).
func (r *recent) NamespaceWritten(name, before string, after plan.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.namespaces[name] = recentNamespace{before, after}
}

// PolicyWritten remembers a write of a policy (cluster.Memory).
func (r *recent) PolicyWritten(key, before string, after *unstructured.Unstructured) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies[key] = recentPolicy{before, after}
}

// forget drops every entry: a pass that read the API server directly has
// seen all earlier writes.
func (r *recent) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.namespaces)
	clear(r.policies)
}

// forgetPolicies drops the policy entries: a pass that read the policies
// from the API server has seen this replica's writes of them.
func (r *recent) forgetPolicies() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.policies)
}

// apply puts the written objects in place of cached ones the informers
// have not updated yet.
func (r *recent) apply(s *cluster.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, w := range r.namespaces {
		if v, ok := s.Namespaces[name]; ok && v.ResourceVersion == w.before {
			s.Namespaces[name] = w.after
		} else {
			delete(r.namespaces, name)
		}
	}
	if len(r.policies) == 0 {
		return
	}
	byKey := make(map[string]*unstructured.Unstructured, len(s.Policies))
	for _, u := range s.Policies {
		byKey[u.GetNamespace()+"/"+u.GetName()] = u
	}
	for key, w := range r.policies {
		cur, ok := byKey[key]
		stale := (!ok && w.before == "") || (ok && cur.GetResourceVersion() == w.before)
		if !stale {
			delete(r.policies, key)
			continue
		}
		if w.after == nil {
			delete(byKey, key)
		} else {
			byKey[key] = w.after
		}
	}
	s.Policies = s.Policies[:0]
	for _, u := range byKey {
		s.Policies = append(s.Policies, u)
	}
}
