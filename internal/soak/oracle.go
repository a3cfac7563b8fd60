package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/internal/replay"
)

// The oracle: verdicts the soak states for every quiet point, from the
// Rancher projects of the namespaces and the configuration in force
// alone, as calico-pni's documentation promises them (docs/policies.md)
// and as Calico decides them (the first policy of a tier that selects an
// endpoint ends the tier's say; an endpoint no policy selects is open).
// Both evaluators, the reference one of internal/replay and calico-pni's
// own, must agree with these rules before either is trusted to judge
// the writes in between: a bug the product's evaluator shares with its
// generator cannot hide a gap.
//
// The rules, for the soak's probe pods (one per namespace, app=probe,
// service account default) on TCP 80 unless said:
//
//	| from                                   | to                               | verdict |
//	|----------------------------------------|----------------------------------|---------|
//	| a namespace of project P               | another namespace of P           | allowed |
//	| a namespace of project Q               | a walled namespace of project P  | denied  |
//	| the internet                           | a walled namespace               | denied  |
//	| Rancher monitoring's Prometheus        | a walled namespace               | allowed |
//	| a namespace of the System project      | a walled namespace               | allowed |
//	| any probe pod, UDP 53                  | the cluster's DNS                | allowed |
//
// "Walled": in a user project, not opted out, and not staged (a staged
// project's policies decide nothing yet). Namespaces opted out are left
// out of the first rule (they are not isolated, their egress is open, but
// an isolated peer's egress does not name them as its project's).
//
// At the end of a cleanup nothing is walled: every pair is allowed. Half
// way through a cleanup (interrupted) only the rules that allow hold: no
// namespace may be cut off from its peers, whichever were released.
type expectation struct {
	src, dst string
	protocol string
	port     uint16
	allowed  bool
	rule     string
}

// phase says which rules hold at a quiet point.
type phase int

const (
	walls    phase = iota // calico-pni runs and has converged
	released              // a cleanup has finished
	halfway               // a cleanup was interrupted
)

// member is what the rules read of a namespace.
type member struct {
	name, project string
	optedOut      bool
}

// expectations lists the stated verdicts for the namespaces on the
// server now.
func (s *soak) expectations() ([]expectation, error) {
	list, err := s.e.Kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var users []member
	var system []string
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		project := ns.Labels["field.cattle.io/projectId"]
		if project == s.system && !strings.HasPrefix(ns.Name, "cattle-") && !strings.HasPrefix(ns.Name, "kube-") {
			// A namespace the soak moved into the System project: its
			// egress is the System project's.
			system = append(system, ns.Name)
		}
		if !strings.HasPrefix(ns.Name, "ns-") && !strings.HasPrefix(ns.Name, "soak-") || project == "" || project == s.system {
			continue
		}
		_, out := ns.Annotations[config.IsolationAnnotation]
		users = append(users, member{name: ns.Name, project: project, optedOut: out && s.cfg.AllowOptOut})
	}
	slices.SortFunc(users, func(a, b member) int { return strings.Compare(a.name, b.name) })
	walled := func(m member) bool {
		return s.phase == walls && !m.optedOut && !slices.Contains(s.cfg.Projects.Stage, m.project)
	}
	var out []expectation
	add := func(src, dst, protocol string, port uint16, allowed bool, rule string) {
		out = append(out, expectation{src, dst, protocol, port, allowed, rule})
	}
	for _, a := range users {
		add(a.name+"/probe", "kube-system/coredns", "UDP", 53, true, "every pod reaches the cluster's DNS")
		for _, b := range users {
			switch {
			case a.name == b.name:
			case a.project == b.project && !a.optedOut && !b.optedOut:
				add(a.name+"/probe", b.name+"/probe", "TCP", 80, true, "within a project")
			case s.phase == released:
				add(a.name+"/probe", b.name+"/probe", "TCP", 80, true, "after cleanup nothing is walled")
			case a.project != b.project && walled(b):
				add(a.name+"/probe", b.name+"/probe", "TCP", 80, false, "between projects, into a walled namespace")
			}
		}
		switch {
		case walled(a):
			add("internet", a.name+"/probe", "TCP", 80, false, "from the internet into a walled namespace")
		case s.phase == released:
			add("internet", a.name+"/probe", "TCP", 80, true, "after cleanup nothing is walled")
		}
		if !a.optedOut {
			add("cattle-monitoring-system/prometheus", a.name+"/probe", "TCP", 80, true, "Rancher monitoring scrapes every namespace")
			add("kube-system/coredns", a.name+"/probe", "TCP", 80, true, "the System project reaches every namespace")
			if len(system) > 0 {
				add(system[0]+"/probe", a.name+"/probe", "TCP", 80, true, "the System project reaches every namespace")
			}
		}
	}
	return out, nil
}

// checkOracle checks both evaluators against the stated verdicts at a
// quiet point.
func (s *soak) checkOracle(op int, st *state, rst *replay.State) {
	fail := func(format string, args ...any) {
		s.rep.Failures = append(s.rep.Failures, fmt.Sprintf("operation %d: oracle: %s (replay: -seed %d -ops %d)", op, fmt.Sprintf(format, args...), s.o.Seed, op))
	}
	want, err := s.expectations()
	if err != nil {
		fail("%v", err)
		return
	}
	ref, err := replay.SyntheticProbes(rst)
	if err != nil {
		fail("%v", err)
		return
	}
	ix := replay.NewIndex(rst)
	if s.probes == nil {
		s.probes = &probes{}
	}
	var conns []conn
	for _, x := range want {
		c, err := ref.Conn(x.src, x.dst, x.protocol, x.port)
		if err != nil {
			fail("%v", err)
			return
		}
		d, err := ix.Evaluate(c)
		if err != nil {
			fail("%s: %v", c, err)
			return
		}
		if (d.Verdict == replay.Allowed) != x.allowed {
			fail("the reference evaluator finds %s %s, the rule %q says allowed=%v", c, d, x.rule, x.allowed)
		}
		conns = append(conns, conn{src: s.probeNamed(x.src), dst: s.probeNamed(x.dst), protocol: x.protocol, port: x.port})
	}
	got, err := s.probes.verdicts(st, conns)
	if err != nil {
		fail("%v", err)
		return
	}
	for i, v := range got {
		if (v == evaluator.Allow) != want[i].allowed {
			fail("calico-pni's evaluator finds %s %s, the rule %q says allowed=%v", conns[i], v, want[i].rule, want[i].allowed)
		}
	}
	s.rep.Stated += len(want)
}

// probeNamed is the soak's probe of a name as the oracle writes it.
func (s *soak) probeNamed(name string) probe {
	if name == "internet" {
		return probe{addr: internet}
	}
	ns, pod, _ := strings.Cut(name, "/")
	return probe{namespace: ns, name: pod, addr: s.probes.addr(name), pod: true}
}
