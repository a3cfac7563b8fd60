package calico

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Labels and annotations calico-pni puts on every Calico object it writes.
// ManagedByLabel is the only mark of ownership: calico-pni updates and
// deletes nothing that lacks it, whatever its name.
const (
	ManagedByLabel        = "app.kubernetes.io/managed-by"
	ManagedByValue        = "calico-pni"
	ClassLabel            = "calico-pni.io/class"
	DescriptionAnnotation = "calico-pni.io/description"
)

// Class tells the writer when a policy may change. Every policy that selects
// an endpoint turns on default deny for it, so the order of writes matters:
// allow policies are written first and removed last, baseline policies the
// other way round, and hold-open policies exist only while isolation is
// switched on or off in one direction.
type Class string

// The classes.
const (
	ClassAllow    Class = "allow"
	ClassBaseline Class = "baseline"
	// ClassHold is a policy that lets everything through in one direction
	// for isolated namespaces while isolation in that direction is switched
	// on or off, so that no single write of the switch denies what both the
	// state before and the state after allow (package plan).
	ClassHold Class = "hold"
	// ClassHandover marks the copy of Rancher's own isolation policies of
	// a namespace that calico-pni keeps while Rancher's isolation is
	// switched off (policies/handover.go).
	ClassHandover Class = "handover"
)

// Policy is one Calico policy as calico-pni wants it, before it is given the
// name it is stored under and an API version.
type Policy struct {
	// Name is the policy's name in Calico's v3 API (for example
	// "pni-allow-dns"); API.StoredName gives the object name.
	Name string
	// Namespace is empty for a GlobalNetworkPolicy and set for a
	// namespaced NetworkPolicy.
	Namespace string
	Class     Class
	// Description says in one sentence why the policy exists. It is
	// written as an annotation so that `kubectl get -o yaml` explains it.
	Description string
	Spec        GlobalNetworkPolicySpec
	// Staged policies (Calico 3.30 and later) are evaluated against real
	// traffic and reported in Calico's flow logs, never enforced.
	Staged bool
}

// Kind is GlobalNetworkPolicy or NetworkPolicy, or their staged kinds.
func (p Policy) Kind() string {
	kind := "GlobalNetworkPolicy"
	if p.Namespace != "" {
		kind = "NetworkPolicy"
	}
	if p.Staged {
		kind = "Staged" + kind
	}
	return kind
}

// StagedSet is the stagedAction of a staged policy that stands for the
// policy as it would be enforced.
const StagedSet = "Set"

// Version is a Calico release, as ClusterInformation reports it ("v3.28.5").
type Version struct{ Major, Minor int }

// ParseVersion reads "v3.28.5", "3.29", "v3.30.0-0.dev" and the like.
func ParseVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.SplitN(t, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("Calico version %q is not of the form v3.28.0", s)
	}
	minorText, _, _ := strings.Cut(parts[1], "-")
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(minorText)
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("Calico version %q is not of the form v3.28.0", s)
	}
	return Version{major, minor}, nil
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d", v.Major, v.Minor) }

// The two Calico API groups calico-pni can write.
const (
	GroupV3 = "projectcalico.org"
	GroupV1 = "crd.projectcalico.org"
)

// API is the Calico API calico-pni writes to and the Calico version behind
// it, which decides the names objects are stored under.
type API struct {
	// Group is GroupV3 (Calico's supported API, served by the Calico API
	// server or, from 3.32, by native CRDs) or GroupV1 (Calico's storage
	// CRDs, written directly).
	Group   string
	Version Version
	// Tiers is true when the API serves Tier objects (Calico 3.29 and
	// later), Staged when it serves staged policies (3.30 and later).
	Tiers, Staged bool
}

// PolicyKinds returns the kinds of policy calico-pni may write through a:
// GlobalNetworkPolicy, and StagedGlobalNetworkPolicy where it is served.
func (a API) PolicyKinds() []string {
	if a.Staged {
		return []string{"GlobalNetworkPolicy", "StagedGlobalNetworkPolicy"}
	}
	return []string{"GlobalNetworkPolicy"}
}

// StagingUnserved is the error for staged policies that a would have to
// write but does not serve (Calico before 3.30): the daemon stops its
// pass with it, and render refuses to print them.
func (a API) StagingUnserved() error {
	return fmt.Errorf("staging isolation (rollout: stage, or projects.stage) needs Calico's staged policies, which Calico 3.30 and later serve; %s serves none (Calico %s): set rollout: enforce and leave projects.stage empty, or upgrade Calico", a.GroupVersion(), a.Version)
}

// GroupVersion returns projectcalico.org/v3 or crd.projectcalico.org/v1.
func (a API) GroupVersion() schema.GroupVersion {
	if a.Group == GroupV3 {
		return schema.GroupVersion{Group: GroupV3, Version: "v3"}
	}
	return schema.GroupVersion{Group: GroupV1, Version: "v1"}
}

// Resource returns the resource a policy of this kind is written to.
func (a API) Resource(kind string) schema.GroupVersionResource {
	plural := strings.ToLower(kind) + "s"
	if strings.HasSuffix(kind, "Policy") {
		plural = strings.ToLower(strings.TrimSuffix(kind, "Policy")) + "policies"
	}
	return a.GroupVersion().WithResource(plural)
}

// DefaultTier is the tier of every policy that names none.
const DefaultTier = "default"

// tierPrefixed reports whether the stored name of a policy in tier carries
// the "<tier>." prefix: in a non-default tier up to Calico 3.31, in both
// APIs (the Calico API server demands it from 3.29, when tiers came to
// Calico Open Source); in the default tier up to 3.31 in the v1 CRDs only.
// From 3.32 names are plain and spec.tier says the tier; kube-controllers
// renames prefixed objects and would fight a writer that kept the prefix.
func (a API) tierPrefixed(tier string) bool {
	if a.Version.AtLeast(3, 32) {
		return false
	}
	if tier == "" || tier == DefaultTier {
		return a.Group == GroupV1
	}
	return true
}

// StoredName returns the name a default-tier policy is stored under: in
// the v1 CRDs of Calico 3.31 and earlier "foo" is stored as "default.foo";
// from 3.32, and always in the v3 API, it is "foo".
func (a API) StoredName(name string) string { return a.StoredNameIn(DefaultTier, name) }

// StoredNameIn returns the name a policy of the given tier is stored
// under: "<tier>.<name>" where Calico's version requires it (see
// tierPrefixed), else the name itself. Names never hold a dot of their
// own, so the stored name has at most one.
func (a API) StoredNameIn(tier, name string) string {
	if a.tierPrefixed(tier) {
		if tier == "" {
			tier = DefaultTier
		}
		return tier + "." + name
	}
	return name
}

// PolicyName returns the v3 name of a stored object, the inverse of
// StoredNameIn: up to Calico 3.31 the text after the tier prefix.
func (a API) PolicyName(stored string) string {
	if a.Version.AtLeast(3, 32) {
		return stored
	}
	if _, name, ok := strings.Cut(stored, "."); ok {
		return name
	}
	return stored
}

// TierResource returns the resource Tiers are written to.
func (a API) TierResource() schema.GroupVersionResource {
	return a.GroupVersion().WithResource("tiers")
}

// Object renders p as the object calico-pni writes through api.
func (a API) Object(p Policy) *unstructured.Unstructured {
	meta := metav1.ObjectMeta{
		Name:      a.StoredNameIn(p.Spec.Tier, p.Name),
		Namespace: p.Namespace,
		Labels: map[string]string{
			ManagedByLabel: ManagedByValue,
			ClassLabel:     string(p.Class),
		},
	}
	if p.Description != "" {
		meta.Annotations = map[string]string{DescriptionAnnotation: p.Description}
	}
	typeMeta := metav1.TypeMeta{APIVersion: a.GroupVersion().String(), Kind: p.Kind()}
	var obj any
	spec := p.Spec
	if p.Staged && spec.StagedAction == "" {
		spec.StagedAction = StagedSet
	}
	if p.Namespace == "" {
		obj = GlobalNetworkPolicy{TypeMeta: typeMeta, ObjectMeta: meta, Spec: spec}
	} else {
		obj = NetworkPolicy{TypeMeta: typeMeta, ObjectMeta: meta, Spec: NamespacedSpec(spec)}
	}
	u, err := toUnstructured(obj)
	if err != nil {
		// The types above always marshal; a failure is a programming error.
		panic(fmt.Sprintf("rendering %s: %v", p.Name, err))
	}
	return u
}

// NamespacedSpec copies the fields a NetworkPolicy has.
func NamespacedSpec(s GlobalNetworkPolicySpec) NetworkPolicySpec {
	return NetworkPolicySpec{
		Tier: s.Tier, Order: s.Order, Selector: s.Selector,
		ServiceAccountSelector: s.ServiceAccountSelector, Types: s.Types,
		Ingress: s.Ingress, Egress: s.Egress, PerformanceHints: s.PerformanceHints, StagedAction: s.StagedAction,
	}
}

// SpecOf reads the spec of a stored GlobalNetworkPolicy or NetworkPolicy.
// Fields calico-pni does not model are dropped, which is harmless: they are
// also absent from the desired spec, so any difference forces a rewrite of
// the whole spec.
func SpecOf(u *unstructured.Unstructured) (GlobalNetworkPolicySpec, error) {
	var spec GlobalNetworkPolicySpec
	err := decodeSpec(u, u.GetKind(), &spec)
	return spec, err
}

// decodeSpec reads the spec of a stored object of a kind into a typed
// spec; an object without one leaves it as it is.
func decodeSpec(u *unstructured.Unstructured, kind string, into any) error {
	raw, ok := u.Object["spec"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s %s: spec: %w", kind, u.GetName(), err)
	}
	return nil
}

// SpecEqual compares two specs the way Calico reads them: the default tier
// written or left out is the same, and so are a port written as 80 or "80".
func SpecEqual(a, b GlobalNetworkPolicySpec) bool {
	return bytes.Equal(canonical(a), canonical(b))
}

// CanonicalSpec returns a spec in the form SpecEqual compares.
func CanonicalSpec(s GlobalNetworkPolicySpec) []byte { return canonical(s) }

func canonical(s GlobalNetworkPolicySpec) []byte {
	if s.Tier == "default" {
		s.Tier = ""
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("marshalling a policy spec: %v", err))
	}
	return b
}

func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}
