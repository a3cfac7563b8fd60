// Package rancher answers the Rancher questions calico-pni asks of a
// namespace: which project is it in, can that be trusted, and which project
// is the System project.
//
// Rancher records a namespace's project twice. The annotation
// field.cattle.io/projectId ("c-xxxxx:p-xxxxx") is the source of truth and
// Rancher's webhook guards it: moving a namespace into a project needs the
// manage-namespaces verb on that project. The label of the same key
// ("p-xxxxx") is copied from the annotation by Rancher's agent, and nothing
// guards it: anyone who can edit the namespace can set it. So the annotation
// decides, and a label that disagrees is reported, never believed.
package rancher

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ProjectIDKey is the key of both Rancher's project annotation and label.
const ProjectIDKey = "field.cattle.io/projectId"

// Trust says where a namespace's project came from.
type Trust string

// The ways a namespace can be placed in a project, or not.
const (
	// TrustAnnotation: the guarded annotation names the project.
	TrustAnnotation Trust = "annotation"
	// TrustLabel: only the label names it, and the configuration says to
	// believe labels (clusters whose projects Rancher does not manage).
	TrustLabel Trust = "label"
	// Untrusted: something claims a project but cannot be believed; the
	// namespace is in no project and Problem says why.
	Untrusted Trust = "untrusted"
	// Unassigned: nothing claims a project.
	Unassigned Trust = "unassigned"
)

// Membership is a namespace's project as calico-pni sees it.
type Membership struct {
	// Project is the trusted project ID ("p-xxxxx"), or empty.
	Project string
	Trust   Trust
	// Problem explains a label or annotation calico-pni could not believe
	// or that disagrees with the other; empty when all is well.
	Problem string
}

// ProjectOf returns the project of a namespace from its labels and
// annotations. trustLabelOnly admits label-only namespaces.
func ProjectOf(labels, annotations map[string]string, trustLabelOnly bool) Membership {
	label, hasLabel := labels[ProjectIDKey]
	annotation, hasAnnotation := annotations[ProjectIDKey]

	if hasAnnotation {
		project, err := parseAnnotation(annotation)
		if err != nil {
			return Membership{Trust: Untrusted, Problem: err.Error()}
		}
		m := Membership{Project: project, Trust: TrustAnnotation}
		if hasLabel && label != project {
			m.Problem = fmt.Sprintf("label %s=%q disagrees with the annotation (%q); the annotation, which Rancher guards, decides: the namespace is in %s. Rancher's agent normally corrects the label; if it stays, someone set it by hand",
				ProjectIDKey, label, annotation, project)
		}
		return m
	}
	if !hasLabel {
		return Membership{Trust: Unassigned}
	}
	if err := checkProjectID(label); err != nil {
		return Membership{Trust: Untrusted, Problem: fmt.Sprintf("label %s: %v", ProjectIDKey, err)}
	}
	if trustLabelOnly {
		return Membership{Project: label, Trust: TrustLabel}
	}
	return Membership{Trust: Untrusted, Problem: fmt.Sprintf(
		"label %s=%q has no matching annotation; Rancher sets both, and anyone who can edit the namespace can set the label, so it is not believed. Move the namespace into the project with Rancher, or set trustLabelOnly if Rancher does not manage this cluster's projects",
		ProjectIDKey, label)}
}

// parseAnnotation reads "c-xxxxx:p-xxxxx" (or "local:p-xxxxx").
func parseAnnotation(v string) (string, error) {
	cluster, project, ok := strings.Cut(v, ":")
	if !ok || cluster == "" || project == "" || strings.Contains(project, ":") {
		return "", fmt.Errorf("annotation %s=%q is not of the form <cluster>:<project> (e.g. c-abcde:p-b6jcw)", ProjectIDKey, v)
	}
	if err := checkProjectID(project); err != nil {
		return "", fmt.Errorf("annotation %s=%q: %v", ProjectIDKey, v, err)
	}
	return project, nil
}

// checkProjectID accepts what can stand in a label value and a policy name:
// Rancher's IDs are "p-" and five lower-case letters or digits.
func checkProjectID(id string) error {
	if _, ok := validIDs.Load(id); ok {
		return nil
	}
	if msgs := validation.IsDNS1123Label(id); len(msgs) > 0 {
		return fmt.Errorf("project ID %q is not a Rancher project ID such as p-b6jcw: %s", id, strings.Join(msgs, "; "))
	}
	if validIDCount.Add(1) <= maxValidIDs {
		validIDs.Store(id, true)
	}
	return nil
}

// validIDs remembers project IDs that passed checkProjectID: thousands of
// namespaces share a few hundred projects. It stops growing at maxValidIDs.
var (
	validIDs     sync.Map
	validIDCount atomic.Int64
)

const maxValidIDs = 1 << 16

// Namespaces whose project is the System project in a Rancher downstream
// cluster, in the order they are asked.
var systemNamespaces = []string{"cattle-system", "kube-system"}

// SystemProject returns the ID of the System project and how it was found.
// A downstream cluster has no Project objects, so the System project is the
// project of cattle-system, else of kube-system, unless the configuration
// names it. projectOf gives the trusted project of a namespace by name
// ("" when it has none or does not exist).
func SystemProject(override string, projectOf func(namespace string) string) (id, source string) {
	if override != "" {
		return override, "configuration (systemProject)"
	}
	for _, ns := range systemNamespaces {
		if p := projectOf(ns); p != "" {
			return p, "project of namespace " + ns
		}
	}
	return "", ""
}
