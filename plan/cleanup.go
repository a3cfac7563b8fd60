package plan

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// Cleanup plans the removal of everything calico-pni wrote (calico-pni
// cleanup, which the chart's uninstall hook runs), in an order that never
// cuts a namespace off from its peers:
//
//	release:          every namespace leaves isolation (the isolated and
//	                  staged labels go), in parallel; the project labels
//	                  stay, so that peers still isolated keep admitting it
//	relabel-released: the project labels, any transit labels and the
//	                  status go, once no namespace is isolated any more
//	baseline:         the deny baseline (it selects nothing now)
//	narrow:           every other policy: allows, holds, staged policies
//	tier-delete:      calico-pni's tiers, once their policies are gone
//
// managed are calico-pni's policies and tiers, in every Calico API the
// cluster serves. A cleanup that stops half way leaves every namespace
// either still isolated with all its policies, or released; run again, it
// plans only what is left.
func Cleanup(namespaces map[string]Namespace, managed []*unstructured.Unstructured) Plan {
	var release, relabel []NamespaceWrite
	for _, name := range slices.Sorted(maps.Keys(namespaces)) {
		ns := namespaces[name]
		if ns.Deleting {
			continue
		}
		own := ownLabels(ns.Labels)
		_, hasStatus := ns.Annotations[policies.StatusAnnotation]
		var off []string
		for _, k := range []string{policies.IsolatedLabel, policies.StagedLabel} {
			if _, ok := own[k]; ok {
				off = append(off, k)
				delete(own, k)
			}
		}
		if len(off) > 0 {
			release = append(release, NamespaceWrite{Name: name, Remove: off, Before: ns.ResourceVersion})
		}
		if len(own) > 0 || hasStatus {
			relabel = append(relabel, NamespaceWrite{Name: name, Remove: slices.Sorted(maps.Keys(own)), RemoveStatus: hasStatus, Before: ns.ResourceVersion, Last: true})
		}
	}
	var baseline, rest, tiers []PolicyWrite
	for _, u := range managed {
		w := PolicyWrite{Verb: Delete, Name: u.GetName(), Class: classOf(u), Object: u}
		switch {
		case u.GetKind() == "Tier":
			tiers = append(tiers, w)
		case w.Class == calico.ClassBaseline && !isStaged(u.GetKind()):
			baseline = append(baseline, w)
		default:
			rest = append(rest, w)
		}
	}
	for _, ws := range [][]PolicyWrite{baseline, rest, tiers} {
		sortChanges(ws)
	}
	var p Plan
	if len(release) > 0 {
		p.Steps = append(p.Steps, Step{Name: phaseNames[phaseRelease], Namespaces: release, Makes: Relabels})
	}
	if len(relabel) > 0 {
		p.Steps = append(p.Steps, Step{Name: phaseNames[phaseRelabelReleased], Namespaces: relabel, Makes: Relabels})
	}
	for _, s := range []Step{
		{Name: "baseline", Policies: baseline, Waits: Relabels, Makes: Narrows},
		{Name: "narrow", Policies: rest, Waits: Relabels, Makes: Narrows},
		{Name: "tier-delete", Policies: tiers},
	} {
		if !s.Empty() {
			p.Steps = append(p.Steps, s)
		}
	}
	return p
}
