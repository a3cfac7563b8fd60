package policies

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
)

// selectedBy fills in the policies that apply to an isolated namespace.
// Namespaces that agree on every label key the shared policies read are
// selected alike, so the answer is computed once per such signature and
// the sorted name lists are shared between namespaces (read-only).
func (g *generator) selectedBy(info *nsInfo, invalid map[string]error) {
	st := info.state
	label := func(k string) (string, bool) {
		switch {
		case k == calico.NameLabel:
			return info.ns.Name, true
		case strings.HasPrefix(k, LabelPrefix):
			v, ok := st.Labels[k]
			return v, ok
		}
		v, ok := info.ns.Labels[k]
		return v, ok
	}
	sig := g.sig[:0]
	for _, k := range g.sigKeys {
		if v, ok := label(k); ok {
			sig = append(sig, '=')
			sig = append(sig, v...)
		}
		sig = append(sig, 0)
	}
	for _, only := range g.sigOnly {
		if only[info.ns.Name] {
			sig = append(sig, '1')
		} else {
			sig = append(sig, '0')
		}
	}
	var extra string
	if name, ok := g.projectPolicy[st.Status.Project]; ok && !info.own {
		extra = name
	} else if name, ok := g.ownPolicy[info.ns.Name]; ok {
		extra = name
	}
	sig = append(sig, extra...)
	g.sig = sig
	names, ok := g.lists[string(sig)]
	if !ok {
		labels := map[string]string{}
		for _, k := range g.sigKeys {
			if v, ok := label(k); ok {
				labels[k] = v
			}
		}
		for _, b := range g.shared {
			if b.selects.Matches(labels) && (b.only == nil || b.only[info.ns.Name]) {
				names = append(names, b.policy.Name)
			}
		}
		if extra != "" {
			at, _ := slices.BinarySearch(names, extra)
			names = slices.Insert(names, at, extra)
		}
		g.lists[string(sig)] = names
	}
	st.Status.Policies = names
	st.Requires = names
	for _, n := range names {
		if err, bad := invalid[n]; bad {
			st.Status.AddProblem(fmt.Sprintf("policy %s is invalid and was not written, so this namespace is left as it was: %v", n, err))
		}
	}
}

// prepareSelection sorts the shared policies by name and collects what
// tells namespaces apart for them: the label keys their selectors read and
// their per-namespace limits.
func (g *generator) prepareSelection() {
	slices.SortFunc(g.shared, func(a, b built) int { return cmp.Compare(a.policy.Name, b.policy.Name) })
	var keys []string
	for _, b := range g.shared {
		keys = append(keys, calico.Keys(b.selects)...)
		if b.only != nil {
			g.sigOnly = append(g.sigOnly, b.only)
		}
	}
	slices.Sort(keys)
	g.sigKeys = slices.Compact(keys)
	g.lists = map[string][]string{}
}
