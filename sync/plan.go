package sync

import (
	"bytes"
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
	// policy is the desired policy (not set for deletes).
	policy calico.Policy
	// afterUnion marks the final write of a policy whose union with its
	// old form was written earlier in the pass: the update is made on the
	// object that write returned.
	afterUnion bool
}

// matches compares a managed object with a desired policy on what
// calico-pni owns: its two labels, its description and the whole spec.
func matches(cur *unstructured.Unstructured, p calico.Policy, canon func(*unstructured.Unstructured) []byte) bool {
	labels := cur.GetLabels()
	if labels[calico.ManagedByLabel] != calico.ManagedByValue || labels[calico.ClassLabel] != string(p.Class) {
		return false
	}
	if cur.GetAnnotations()[calico.DescriptionAnnotation] != p.Description {
		return false
	}
	got := canon(cur)
	return got != nil && bytes.Equal(got, calico.CanonicalSpec(p.Spec))
}

// canonicalOf reads a managed object's spec in canonical form; nil when
// it cannot be read (so it never matches, and is rewritten).
func canonicalOf(u *unstructured.Unstructured) []byte {
	spec, err := calico.SpecOf(u)
	if err != nil {
		return nil
	}
	return calico.CanonicalSpec(spec)
}

// specs remembers the canonical spec of each managed object by its
// resourceVersion, so that a pass compares a thousand unchanged policies
// without decoding them again. Used by the single pass goroutine only.
type specs map[string]specEntry

type specEntry struct {
	resourceVersion string
	canon           []byte
}

// canon returns the canonical spec of u, from memory when u is unchanged.
func (s specs) canon(u *unstructured.Unstructured) []byte {
	key := u.GetNamespace() + "/" + u.GetName()
	if e, ok := s[key]; ok && e.resourceVersion == u.GetResourceVersion() && u.GetResourceVersion() != "" {
		return e.canon
	}
	c := canonicalOf(u)
	s[key] = specEntry{u.GetResourceVersion(), c}
	return c
}

// forget drops entries for objects no longer managed.
func (s specs) keep(managed []*unstructured.Unstructured) {
	if len(s) <= len(managed) {
		return
	}
	live := make(map[string]bool, len(managed))
	for _, u := range managed {
		live[u.GetNamespace()+"/"+u.GetName()] = true
	}
	for k := range s {
		if !live[k] {
			delete(s, k)
		}
	}
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
	labels          map[string]string
	annotations     map[string]string
	deleting        bool
	resourceVersion string
}

// namespaceChange is one patch of a namespace's calico-pni keys.
type namespaceChange struct {
	name  string
	patch []byte
	// before is the resourceVersion the patch was planned against.
	before string
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
	// Namespaces of one project mostly carry the same status: encode each
	// distinct one once. The policy lists are shared, so their address
	// tells them apart.
	type shape struct {
		state    policies.State
		isolated bool
		project  string
		reason   string
		list     *string
		n        int
	}
	encoded := map[shape]string{}
	encode := func(st policies.Status) string {
		if len(st.Problems) > 0 || len(st.Exposures) > 0 || len(st.Policies) == 0 {
			return st.Encode()
		}
		k := shape{st.State, st.Isolated, st.Project, st.Reason, &st.Policies[0], len(st.Policies)}
		if e, ok := encoded[k]; ok {
			return e
		}
		e := st.Encode()
		encoded[k] = e
		return e
	}
	for _, d := range desired {
		view, ok := live[d.Name]
		if !ok || view.deleting {
			final = append(final, d)
			continue
		}
		// The common case, nothing to change, without allocating.
		if settled(view, d, encode, inPlace) {
			final = append(final, d)
			continue
		}
		current := ownLabels(view.labels)
		want := d.Labels
		st := d.Status
		if d.Status.Isolated {
			var waiting []string
			for _, name := range d.Requires {
				if ok, why := inPlace(name); !ok {
					waiting = append(waiting, fmt.Sprintf("%s (%s)", name, why))
				}
			}
			if len(waiting) > 0 {
				// The generator's slices may be shared: copy before adding.
				st.Problems = slices.Clone(st.Problems)
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
		status := encode(st)
		oldStatus, hadStatus := view.annotations[policies.StatusAnnotation]
		if len(labelPatch) == 0 && hadStatus && oldStatus == status {
			continue
		}
		meta := map[string]any{}
		if len(labelPatch) > 0 {
			meta["labels"] = labelPatch
		}
		if !hadStatus || oldStatus != status {
			meta["annotations"] = map[string]string{policies.StatusAnnotation: status}
		}
		patch, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			panic("encoding a namespace patch: " + err.Error())
		}
		change := namespaceChange{name: d.Name, patch: patch, to: st, before: view.resourceVersion}
		if hadStatus && oldStatus == status {
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

// settled reports whether a namespace already carries exactly the desired
// calico-pni labels and status, with every policy it needs in place (so
// that no hold changes its status).
func settled(view namespaceView, d policies.NamespaceState, encode func(policies.Status) string, inPlace func(string) (bool, string)) bool {
	own := 0
	for k, v := range view.labels {
		if strings.HasPrefix(k, policies.LabelPrefix) {
			own++
			if w, ok := d.Labels[k]; !ok || w != v {
				return false
			}
		}
	}
	if own != len(d.Labels) {
		return false
	}
	if status, ok := view.annotations[policies.StatusAnnotation]; !ok || status != encode(d.Status) {
		return false
	}
	if d.Status.Isolated {
		for _, name := range d.Requires {
			if ok, _ := inPlace(name); !ok {
				return false
			}
		}
	}
	return true
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
