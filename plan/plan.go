// Package plan computes calico-pni's writes as an ordered plan: a list of
// steps, each a set of writes that may run in parallel because no order
// inside it matters. The executor (package cluster) finishes and checks each
// step before it begins the next, and waits between steps where the
// dataplane must catch up (see Wait). Every transition calico-pni makes —
// a pass over any number of namespace and policy changes, a mode switch,
// isolateEgress, promotion and demotion, node changes, an upgrade of
// calico-pni itself, and cleanup — is planned here, by pure code, so that
// the order is a value tests can read and check.
//
// The order keeps calico-pni's promise: at no moment is a connection denied
// that both the state before a change and the state after it allow, nor
// allowed that both deny. docs/design.md explains the steps; the tests in
// this package check every plan of small clusters state by state
// (modelcheck_test.go), and the wire tests replay the writes the API server
// committed.
package plan

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/policies"
)

// Plan is the writes of one transition, in order.
type Plan struct {
	Steps []Step
	// Kept names the live policies left as they are because their desired
	// form failed validation.
	Kept []string
	// Held lists the namespaces that wait (their calico-pni labels stay as
	// they are) and why.
	Held map[string]string
	// Moving lists the namespaces that move between projects in transit.
	Moving []string
	// States counts the namespaces by the state they end the plan in.
	States map[policies.State]int
}

// Step is a set of writes that may run in parallel.
type Step struct {
	// Name says what the step does ("widen", "isolate", "transit-3", ...).
	Name string
	// Policies and Namespaces are the step's writes; a step writes one
	// kind of object (policies, tiers or namespaces), so that the
	// dataplane, which watches each kind apart, sees them in the order of
	// the steps.
	Policies   []PolicyWrite
	Namespaces []NamespaceWrite
	// Waits says which earlier writes the dataplane must have applied
	// before this step's writes may reach it; Makes what this step's own
	// writes count as, for the steps after it.
	Waits, Makes Effect
}

// Empty reports whether a step writes nothing.
func (s Step) Empty() bool { return len(s.Policies) == 0 && len(s.Namespaces) == 0 }

// Effect classifies writes by what later steps rely on. Felix (and Typha)
// receive namespaces and each kind of policy on watches of their own, so
// a namespace label can reach the dataplane before a policy committed
// before it; within one kind, the watch keeps the commit order. A step
// that relies on writes of another kind therefore waits until those writes
// are older than the settle time.
type Effect uint8

const (
	// Widens marks writes of policies and tiers that namespaces may rely on
	// once they are isolated or moved: new policies, widened ones, the
	// forms a move needs, holds.
	Widens Effect = 1 << iota
	// Relabels marks namespace label writes that change which policies
	// select a namespace or which peers a policy admits.
	Relabels
	// Narrows marks policy writes that a namespace may no longer rely on:
	// narrowed or deleted allows, releases of holds, the baseline.
	Narrows
)

// Verbs of writes.
const (
	Create = "create"
	Update = "update"
	Patch  = "patch"
	Delete = "delete"
)

// PolicyWrite is one write of a Calico policy or tier.
type PolicyWrite struct {
	Verb  string
	Name  string // the v3 name
	Class calico.Class
	// Object is the object to write (create, update) or the managed
	// object to delete.
	Object *unstructured.Unstructured
	// Policy is the desired policy (not set for deletes and tiers).
	Policy calico.Policy
	// OnWritten marks a write of a policy that an earlier step of the
	// plan wrote (the final form after a union or a transit form, the
	// release of a hold): the executor makes it on the object that write
	// returned (an update keeps its resourceVersion, a delete its UID).
	OnWritten bool
}

// NamespaceWrite is one patch of a namespace's calico-pni keys.
type NamespaceWrite struct {
	Name string
	// Set and Remove are the calico-pni labels to set and to remove.
	Set    map[string]string
	Remove []string
	// Status, when not empty, is the status annotation to write;
	// RemoveStatus removes it.
	Status       string
	RemoveStatus bool
	// Before is the resourceVersion the patch was planned against.
	Before string
	// From is the status the namespace carried before (if any) and To the
	// one the namespace ends with; events are recorded from the
	// difference, on the namespace's last write of the plan.
	From *policies.Status
	To   policies.Status
	// Last is true on the namespace's last write of the plan.
	Last bool
	// Restored lists calico-pni labels the patch puts back after someone
	// else changed them (the status was already the desired one).
	Restored []string
}
