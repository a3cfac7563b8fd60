package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/synthetic"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/objects"
)

// state is what decides the probes' connections: the namespaces and their
// labels, and every Calico policy and tier, by kind/name. Nodes and the
// API's endpoints only change calico-pni's own policies, which the state
// holds.
type state struct {
	namespaces map[string]map[string]string
	calico     map[string]*unstructured.Unstructured
	nodes      []map[string]any
}

// capture reads the state at a quiet point.
func (s *soak) capture() (*state, error) {
	ctx := context.Background()
	api, err := s.api()
	if err != nil {
		return nil, err
	}
	st := &state{namespaces: map[string]map[string]string{}}
	if st.calico, err = s.liveObjects(api, false); err != nil {
		return nil, err
	}
	list, err := s.e.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil {
			st.namespaces[ns.Name] = ns.Labels
		}
	}
	nodes, err := s.e.Dynamic.Resource(nodesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range nodes.Items {
		st.nodes = append(st.nodes, n.Object)
	}
	return st, nil
}

func (st *state) clone() *state {
	return &state{namespaces: maps.Clone(st.namespaces), calico: maps.Clone(st.calico), nodes: st.nodes}
}

// apply replays one write of the audit log on the state.
func (st *state) apply(w testbed.Write) {
	switch w.Resource {
	case "namespaces", "namespaces/status", "namespaces/finalize":
		if w.Verb == "delete" {
			delete(st.namespaces, w.Name)
			return
		}
		if w.Object != nil && w.Object.GetDeletionTimestamp() == nil {
			st.namespaces[w.Name] = w.Object.GetLabels()
		}
	case "globalnetworkpolicies", "stagedglobalnetworkpolicies", "tiers":
		kind := map[string]string{"globalnetworkpolicies": "GlobalNetworkPolicy", "stagedglobalnetworkpolicies": "StagedGlobalNetworkPolicy", "tiers": "Tier"}[w.Resource]
		key := kind + "/" + w.Name
		if w.Verb == "delete" {
			delete(st.calico, key)
			return
		}
		if w.Object != nil {
			st.calico[key] = w.Object
		}
	}
}

// probe is a pod or an address the soak evaluates connections between.
type probe struct {
	namespace, name string
	addr            netip.Addr
	pod             bool
}

// conn is one connection between probes.
type conn struct {
	src, dst probe
	protocol string
	port     uint16
}

func (c conn) String() string {
	name := func(p probe) string {
		if p.pod {
			return p.namespace + "/" + p.name
		}
		return p.addr.String()
	}
	return fmt.Sprintf("%s -> %s %s/%d", name(c.src), name(c.dst), c.protocol, c.port)
}

// probes are the soak's pods: one in each namespace, and the cluster's
// DNS, Prometheus and Rancher agent, each with an address of its own.
type probes struct {
	addrs map[string]netip.Addr
	next  int
}

// Addresses outside the pod ranges: the internet, and the API server's
// endpoint (the first node).
var (
	internet  = netip.MustParseAddr("198.51.100.7")
	apiServer = netip.MustParseAddr(synthetic.NodeAddress(0, 0))
)

func (p *probes) addr(key string) netip.Addr {
	if p.addrs == nil {
		p.addrs = map[string]netip.Addr{}
	}
	if a, ok := p.addrs[key]; ok {
		return a
	}
	p.next++
	a := netip.AddrFrom4([4]byte{10, 244, byte(p.next / 250), byte(p.next%250 + 1)})
	p.addrs[key] = a
	return a
}

// special pods: namespace, name, labels and service account.
var special = []struct {
	namespace, name, sa string
	labels              map[string]string
}{
	{"kube-system", "coredns", "coredns", map[string]string{"k8s-app": "kube-dns"}},
	{"cattle-monitoring-system", "prometheus", "rancher-monitoring-prometheus", map[string]string{"app": "prometheus"}},
	{"cattle-system", "cattle-agent", "cattle", map[string]string{"app": "cattle-agent"}},
}

// pods returns the probes' pods in the namespaces of a state.
func (p *probes) pods(st *state) []probe {
	var out []probe
	for _, ns := range slices.Sorted(maps.Keys(st.namespaces)) {
		out = append(out, probe{namespace: ns, name: "probe", addr: p.addr(ns + "/probe"), pod: true})
	}
	for _, sp := range special {
		if _, ok := st.namespaces[sp.namespace]; ok {
			out = append(out, probe{namespace: sp.namespace, name: sp.name, addr: p.addr(sp.namespace + "/" + sp.name), pod: true})
		}
	}
	return out
}

// conns lists the connections to check between the pods both states
// share: pod to pod (TCP 80, and 6379 to redis role namespaces), to the
// DNS pods (UDP 53), to the API server (TCP 6443) and the internet (TCP
// 443), and from the internet (TCP 80).
func (p *probes) conns(before, after *state) []conn {
	var pods []probe
	for _, pr := range p.pods(before) {
		if _, ok := after.namespaces[pr.namespace]; ok {
			pods = append(pods, pr)
		}
	}
	out := []conn{}
	ext := probe{addr: internet}
	api := probe{addr: apiServer}
	for _, a := range pods {
		for _, b := range pods {
			if a != b {
				out = append(out, conn{a, b, "TCP", 80})
				if _, role := after.namespaces[b.namespace]["network-policy/role_redis"]; role {
					out = append(out, conn{a, b, "TCP", 6379})
				}
			}
			if b.name == "coredns" {
				out = append(out, conn{a, b, "UDP", 53})
			}
		}
		out = append(out, conn{a, api, "TCP", 6443}, conn{a, ext, "TCP", 443}, conn{ext, a, "TCP", 80})
	}
	return out
}

// index builds the evaluator's index of a state.
func (p *probes) index(st *state) (*evaluator.Index, error) {
	r := objects.NewReader()
	add := func(obj map[string]any) error { return r.Add("soak", obj) }
	for name, labels := range st.namespaces {
		if err := add(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": anyMap(labels)}}); err != nil {
			return nil, err
		}
	}
	for _, pr := range p.pods(st) {
		labels, sa := map[string]string{"app": "probe"}, "default"
		for _, sp := range special {
			if sp.namespace == pr.namespace && sp.name == pr.name {
				labels, sa = sp.labels, sp.sa
			}
		}
		pod := map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": pr.name, "namespace": pr.namespace, "labels": anyMap(labels)},
			"spec":     map[string]any{"serviceAccountName": sa, "nodeName": "node-001", "containers": []any{map[string]any{"name": "c", "image": "probe"}}},
			"status":   map[string]any{"phase": "Running", "podIP": pr.addr.String(), "podIPs": []any{map[string]any{"ip": pr.addr.String()}}},
		}
		if err := add(pod); err != nil {
			return nil, err
		}
	}
	for _, n := range st.nodes {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	slice := map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
		"metadata":  map[string]any{"name": "kubernetes", "namespace": "default", "labels": map[string]any{"kubernetes.io/service-name": "kubernetes"}},
		"endpoints": []any{map[string]any{"addresses": []any{apiServer.String()}, "conditions": map[string]any{"ready": true}}},
		"ports":     []any{map[string]any{"name": "https", "port": int64(6443), "protocol": "TCP"}},
	}
	if err := add(slice); err != nil {
		return nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(st.calico)) {
		if err := add(st.calico[key].Object); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	set := r.Finish()
	return evaluator.NewIndex(&set.Cluster), nil
}

// verdicts evaluates connections in a state.
func (p *probes) verdicts(st *state, conns []conn) ([]evaluator.Verdict, error) {
	ix, err := p.index(st)
	if err != nil {
		return nil, err
	}
	out := make([]evaluator.Verdict, len(conns))
	for i, c := range conns {
		src, err := p.endpoint(ix, c.src)
		if err != nil {
			return nil, err
		}
		dst, err := p.endpoint(ix, c.dst)
		if err != nil {
			return nil, err
		}
		out[i] = ix.Evaluate(src, dst, c.protocol, c.port).Verdict
	}
	return out, nil
}

func (p *probes) endpoint(ix *evaluator.Index, pr probe) (*evaluator.Endpoint, error) {
	if pr.pod {
		return ix.PodEndpoint(pr.namespace, pr.name)
	}
	return ix.AddrEndpoint(pr.addr), nil
}

// checkWrites replays the writes between two quiet points and checks,
// after each write of a replica, that every connection both quiet points
// agree on has that verdict; and that the replicas' writes never overlap.
// Every operation is one write of its own (or none), so the quiet points
// before and after it are the states before and after one change.
func (s *soak) checkWrites(op int, what string, writes []testbed.Write, after *state) {
	if s.probes == nil {
		s.probes = &probes{}
	}
	s.wire.check(writes, s.rep)
	// The operation's own writes (and the second writer's) change the
	// inputs; the replicas' writes are what must keep the promise.
	cur := s.before.clone()
	var own []testbed.Write
	for _, w := range writes {
		switch {
		case strings.HasPrefix(w.Resource, "leases"):
		case slices.Contains(calicoPNIWriters, w.Writer):
			own = append(own, w)
		default:
			cur.apply(w)
		}
	}
	s.rep.Writes += len(own)
	if len(own) == 0 {
		return
	}
	conns := s.probes.conns(cur, after)
	before, err := s.probes.verdicts(cur, conns)
	if err != nil {
		s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d: evaluating: %v", op, err))
		return
	}
	end, err := s.probes.verdicts(after, conns)
	if err != nil {
		s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d: evaluating: %v", op, err))
		return
	}
	var agreed []conn
	var want []evaluator.Verdict
	for i, c := range conns {
		if before[i] == end[i] && before[i] != evaluator.Indeterminate {
			agreed = append(agreed, c)
			want = append(want, before[i])
		}
		if before[i] == evaluator.Indeterminate || end[i] == evaluator.Indeterminate {
			s.rep.Indeterminate++
		}
	}
	started := time.Now()
	for i, w := range own {
		cur.apply(w)
		got, err := s.probes.verdicts(cur, agreed)
		if err != nil {
			s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d: evaluating after write %d: %v", op, i, err))
			return
		}
		s.rep.Checked += len(agreed)
		wrong := 0
		for j, v := range got {
			if v != want[j] && s.o.Verbose && !s.explained {
				s.explained = true
				s.log("writes of operation %d:", op)
				for k, w := range writes {
					s.log("  %d %s %s", k, w, w.Request)
				}
			}
			if v != want[j] {
				if wrong == 0 {
					s.rep.Violations = append(s.rep.Violations, fmt.Sprintf("operation %d (%s), after write %d of %d (%s): %s is %s, before and after the operation %s (replay: -seed %d -ops %d)",
						op, what, i+1, len(own), w, agreed[j], v, want[j], s.o.Seed, op))
				}
				wrong++
			}
		}
		s.rep.WrongVerdicts += wrong
	}
	s.rep.CheckTime += time.Since(started)
}

// wireCheck follows which replica writes across the whole run.
type wireCheck struct {
	current  string
	lastDone map[string]time.Time
}

// check finds writes of two replicas that overlap: when the writer
// changes, the previous writer's last write must have ended before the
// new writer's first one was received.
func (c *wireCheck) check(writes []testbed.Write, rep *report) {
	for _, w := range daemonWrites(writes) {
		if w.Writer != c.current {
			if c.current != "" && !c.lastDone[c.current].Before(w.Received) {
				rep.Overlaps = append(rep.Overlaps, fmt.Sprintf("%s wrote (%s at %s) while %s's write was not done (%s)",
					w.Writer, w, w.Received.Format(time.StampMicro), c.current, c.lastDone[c.current].Format(time.StampMicro)))
			}
			c.current = w.Writer
		}
		if w.Done.After(c.lastDone[w.Writer]) {
			c.lastDone[w.Writer] = w.Done
		}
	}
}

func daemonWrites(writes []testbed.Write) []testbed.Write {
	var out []testbed.Write
	for _, w := range writes {
		if slices.Contains(calicoPNIWriters, w.Writer) && !strings.HasPrefix(w.Resource, "leases") {
			out = append(out, w)
		}
	}
	return out
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
