package sync

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// Verbs of the writes calico-pni makes.
const (
	verbCreate = "create"
	verbUpdate = "update"
	verbPatch  = "patch"
	verbDelete = "delete"
)

// policyChange is one write of a Calico policy.
type policyChange struct {
	verb  string
	name  string // the v3 name
	class calico.Class
	// object is the object to write (create, update) or the managed
	// object to delete.
	object *unstructured.Unstructured
}

// planPolicies compares the desired policies with the managed ones. It
// returns the creates and updates in write order (allow, then baseline),
// the deletes in removal order (baseline, then allow), and the names of
// desired policies that already match.
func planPolicies(desired []calico.Policy, api calico.API, managed []*unstructured.Unstructured) (writes, deletes []policyChange, upToDate map[string]bool) {
	current := make(map[string]*unstructured.Unstructured, len(managed))
	for _, u := range managed {
		current[u.GetNamespace()+"/"+u.GetName()] = u
	}
	upToDate = map[string]bool{}
	for _, p := range desired {
		want := api.Object(p)
		key := want.GetNamespace() + "/" + want.GetName()
		cur, ok := current[key]
		delete(current, key)
		switch {
		case !ok:
			writes = append(writes, policyChange{verbCreate, p.Name, p.Class, want})
		case matches(cur, want, p):
			upToDate[p.Name] = true
		default:
			writes = append(writes, policyChange{verbUpdate, p.Name, p.Class, mergeForUpdate(cur, want)})
		}
	}
	for _, u := range current {
		class := calico.Class(u.GetLabels()[calico.ClassLabel])
		if class != calico.ClassAllow {
			// Unknown class: remove it early, as a baseline.
			class = calico.ClassBaseline
		}
		deletes = append(deletes, policyChange{verbDelete, api.PolicyName(u.GetName()), class, u})
	}
	slices.SortFunc(deletes, func(a, b policyChange) int {
		if a.class != b.class {
			if a.class == calico.ClassBaseline {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.object.GetNamespace(), b.object.GetNamespace()), cmp.Compare(a.object.GetName(), b.object.GetName()))
	})
	return writes, deletes, upToDate
}

// matches compares a managed object with the desired one on what
// calico-pni owns: its labels, its description and the whole spec.
func matches(cur, want *unstructured.Unstructured, p calico.Policy) bool {
	for k, v := range want.GetLabels() {
		if cur.GetLabels()[k] != v {
			return false
		}
	}
	if cur.GetAnnotations()[calico.DescriptionAnnotation] != want.GetAnnotations()[calico.DescriptionAnnotation] {
		return false
	}
	spec, err := calico.SpecOf(cur)
	return err == nil && calico.SpecEqual(spec, p.Spec)
}

// mergeForUpdate is the desired object with the current resourceVersion,
// keeping labels and annotations others added (calico-pni owns only its
// own keys and the spec).
func mergeForUpdate(cur, want *unstructured.Unstructured) *unstructured.Unstructured {
	out := want.DeepCopy()
	out.SetResourceVersion(cur.GetResourceVersion())
	out.SetUID(cur.GetUID())
	labels := maps.Clone(cur.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want.GetLabels())
	out.SetLabels(labels)
	annotations := maps.Clone(cur.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, calico.DescriptionAnnotation)
	maps.Copy(annotations, want.GetAnnotations())
	if len(annotations) > 0 {
		out.SetAnnotations(annotations)
	}
	return out
}

// namespaceView is what the planner reads of a live namespace.
type namespaceView struct {
	labels      map[string]string
	annotations map[string]string
	deleting    bool
}

// namespaceChange is one patch of a namespace's calico-pni keys.
type namespaceChange struct {
	name  string
	patch []byte
	// from is the status the namespace carried before (if any), to the one
	// written; events are recorded from the difference.
	from *policies.Status
	to   policies.Status
	// restored is set when the patch puts back calico-pni labels that
	// someone else changed (the status was already the desired one).
	restored []string
}

// planNamespaces computes the patches that bring every namespace's
// calico-pni labels and status to the desired state. A namespace whose
// required policies are not all in place (inPlace says why) is held: its
// calico-pni labels stay as they are, so it is never isolated without the
// allows it needs, and its status says what it waits for. It returns the
// patches and the states the namespaces end up in.
func planNamespaces(desired []policies.NamespaceState, live map[string]namespaceView, inPlace func(name string) (bool, string)) ([]namespaceChange, []policies.NamespaceState) {
	var changes []namespaceChange
	final := make([]policies.NamespaceState, 0, len(desired))
	for _, d := range desired {
		view, ok := live[d.Name]
		if !ok || view.deleting {
			final = append(final, d)
			continue
		}
		current := ownLabels(view.labels)
		want := d.Labels
		st := d.Status
		st.Policies = slices.Clone(st.Policies)
		st.Problems = slices.Clone(st.Problems)
		if d.Status.Isolated {
			var waiting []string
			for _, name := range d.Requires {
				if ok, why := inPlace(name); !ok {
					waiting = append(waiting, fmt.Sprintf("%s (%s)", name, why))
				}
			}
			switch {
			case len(waiting) == 0:
			case maps.Equal(current, want):
				st.AddProblem("these policies are not in place: " + strings.Join(waiting, "; "))
			default:
				want = current
				st.Isolated = current[policies.IsolatedLabel] == "true"
				st.AddProblem("held as it is until these policies are in place: " + strings.Join(waiting, "; "))
			}
		}
		d.Status = st
		final = append(final, d)

		labelPatch := map[string]*string{}
		for k := range current {
			if _, keep := want[k]; !keep {
				labelPatch[k] = nil
			}
		}
		for k, v := range want {
			if current[k] != v {
				labelPatch[k] = &v
			}
		}
		encoded := st.Encode()
		oldStatus, hadStatus := view.annotations[policies.StatusAnnotation]
		if len(labelPatch) == 0 && hadStatus && oldStatus == encoded {
			continue
		}
		meta := map[string]any{}
		if len(labelPatch) > 0 {
			meta["labels"] = labelPatch
		}
		if !hadStatus || oldStatus != encoded {
			meta["annotations"] = map[string]string{policies.StatusAnnotation: encoded}
		}
		patch, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			panic("encoding a namespace patch: " + err.Error())
		}
		change := namespaceChange{name: d.Name, patch: patch, to: st}
		if hadStatus && oldStatus == encoded {
			change.restored = slices.Sorted(maps.Keys(labelPatch))
		}
		if hadStatus {
			if prev, err := policies.DecodeStatus(oldStatus); err == nil {
				change.from = &prev
			}
		}
		changes = append(changes, change)
	}
	return changes, final
}

// ownLabels returns the calico-pni.io/ labels of a namespace.
func ownLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, policies.LabelPrefix) {
			out[k] = v
		}
	}
	return out
}
