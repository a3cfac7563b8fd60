package plan

import (
	"bytes"
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
)

// Matches compares a managed object with a desired policy on what
// calico-pni owns: its two labels, its description and the whole spec.
func Matches(cur *unstructured.Unstructured, p calico.Policy, canon func(*unstructured.Unstructured) []byte) bool {
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

// CanonicalOf reads a managed object's spec in canonical form; nil when
// it cannot be read (so it never matches, and is rewritten).
func CanonicalOf(u *unstructured.Unstructured) []byte {
	spec, err := calico.SpecOf(u)
	if err != nil {
		return nil
	}
	return calico.CanonicalSpec(spec)
}

// Specs remembers the canonical spec of each managed object by its
// resourceVersion, so that a pass compares a thousand unchanged policies
// without decoding them again. Used by one goroutine at a time.
type Specs map[string]specEntry

type specEntry struct {
	resourceVersion string
	canon           []byte
}

// Canon returns the canonical spec of u, from memory when u is unchanged.
func (s Specs) Canon(u *unstructured.Unstructured) []byte {
	key := u.GetNamespace() + "/" + u.GetName()
	if e, ok := s[key]; ok && e.resourceVersion == u.GetResourceVersion() && u.GetResourceVersion() != "" {
		return e.canon
	}
	c := CanonicalOf(u)
	s[key] = specEntry{u.GetResourceVersion(), c}
	return c
}

// Keep drops entries for objects no longer managed.
func (s Specs) Keep(managed []*unstructured.Unstructured) {
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

// MergeForUpdate is the desired object with the current resourceVersion,
// keeping labels and annotations others added (calico-pni owns only its
// own keys and the spec).
func MergeForUpdate(cur, want *unstructured.Unstructured) *unstructured.Unstructured {
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
