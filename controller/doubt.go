package controller

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/calico-pni/calico-pni/plan"

	"github.com/calico-pni/calico-pni/cluster"
)

// A watch that breaks (the API server restarted, the connection dropped)
// leaves its informer's cache behind the API server until client-go has
// watched again, which after an outage can take tens of seconds of
// back-off. A pass planned on such a cache writes what the cluster held
// before: a namespace's old project, the deletion of a project's policy
// that its namespaces still need — and a standby that takes over carries
// the same risk. So every broken watch puts the caches in doubt. While in
// doubt, a pass reads everything it plans on from the API server, and
// compares it with the caches; once they agree, the doubt ends. (The
// randomized soak, internal/soak, found this: a standby whose caches were
// stale after an API server restart became leader and moved a namespace
// back to its old project for twenty seconds.)

// A replica that begins to lead carries the same risk without any watch
// breaking: it stood by while another replica wrote, its caches may not
// have caught up with those writes yet, and what it remembers of its own
// writes from an earlier term (recent.go) may since have been undone. So a
// new term forgets that memory and begins in doubt. (The soak found this
// too: a replica that led again after a failover overlaid its caches with
// its writes of the term before, deleted two projects' allow policies and
// moved namespaces to their old projects until the next pass.)

// newTerm is called when this replica begins to lead, before its first
// pass.
//
// The replica that led before may have written a moment ago: the first
// steps of a term that rely on other writes wait the whole settle time.
func (c *Controller) newTerm() {
	c.recent.forget()
	// The record of promotions may have changed under another leader.
	c.promoteMu.Lock()
	c.promoted = nil
	c.promoteMu.Unlock()
	c.lastFailed = nil
	c.brokenWatches.Add(1)
	c.settle.Wrote(plan.Widens|plan.Relabels|plan.Narrows, time.Now())
}

// watchBroken counts a broken watch, then lets client-go log it.
func (c *Controller) watchBroken(ctx context.Context, r *cache.Reflector, err error) {
	c.brokenWatches.Add(1)
	cache.DefaultWatchErrorHandler(ctx, r, err)
}

// inDoubt reports whether a watch broke (or a term began) since the caches
// last agreed with the API server, and the count to confirm later.
func (c *Controller) inDoubt() (bool, uint64) {
	breaks := c.brokenWatches.Load()
	return breaks != c.trustedBreaks.Load(), breaks
}

// fromServer reads from the API server everything a pass plans on, and
// tells whether the caches hold the same objects at the same versions.
func (c *Controller) fromServer(ctx context.Context, w *policyWatch) (*cluster.State, bool, error) {
	s, err := cluster.ListCluster(ctx, c.o.Kube)
	if err != nil {
		return nil, false, err
	}
	pods, err := cluster.ListPods(ctx, c.o.Kube)
	if err != nil {
		return nil, false, err
	}
	s.AddPods(pods)
	rancherPolicies, err := cluster.ListRancherPolicies(ctx, c.o.Kube)
	if err != nil {
		return nil, false, err
	}
	s.AddRancherPolicies(rancherPolicies)
	if s.Policies, err = cluster.ListManaged(ctx, c.o.Dynamic, w.api); err != nil {
		return nil, false, err
	}
	return s, maps.Equal(serverVersions(s, pods), c.cacheVersions(w)), nil
}

// serverVersions lists the resourceVersion of every object the caches hold
// that the pass reads, as fromServer read them: namespaces, nodes, the
// API's EndpointSlices, Services reachable from outside, pods with host
// ports, managed policies.
func serverVersions(s *cluster.State, pods []*corev1.Pod) map[string]string {
	out := maps.Clone(s.Versions)
	for name, v := range s.Namespaces {
		out["Namespace/"+name] = v.ResourceVersion
	}
	for _, p := range pods {
		out["Pod/"+p.Namespace+"/"+p.Name] = p.ResourceVersion
	}
	for _, u := range s.Policies {
		out[u.GetKind()+"/"+u.GetName()] = u.GetResourceVersion()
	}
	return out
}

// cacheVersions lists the same from the informers' caches.
func (c *Controller) cacheVersions(w *policyWatch) map[string]string {
	out := map[string]string{}
	for _, ns := range typed[corev1.Namespace](c.namespaces.GetStore().List()) {
		out["Namespace/"+ns.Name] = ns.ResourceVersion
	}
	for _, n := range typed[corev1.Node](c.nodes.GetStore().List()) {
		out["Node/"+n.Name] = n.ResourceVersion
	}
	for _, e := range typed[discoveryv1.EndpointSlice](c.endpoints.GetStore().List()) {
		out["EndpointSlice/"+e.Name] = e.ResourceVersion
	}
	for _, svc := range typed[corev1.Service](c.services.GetStore().List()) {
		if cluster.IsExternal(svc) {
			out["Service/"+svc.Namespace+"/"+svc.Name] = svc.ResourceVersion
		}
	}
	for _, p := range typed[corev1.Pod](c.pods.GetStore().List()) {
		if cluster.HasHostPorts(p) {
			out["Pod/"+p.Namespace+"/"+p.Name] = p.ResourceVersion
		}
	}
	for _, u := range w.managed() {
		out[u.GetKind()+"/"+u.GetName()] = u.GetResourceVersion()
	}
	return out
}
