// Package sync is the only part of calico-pni that talks to the API
// server. It watches namespaces, nodes, the Kubernetes API's endpoints and
// its own Calico policies; builds a snapshot; asks package policies for the
// desired state; and writes the difference, in an order that never denies
// what the final state allows. It also reports: namespace status
// annotations, events and metrics.
package cluster

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/calico-pni/calico-pni/calico"
)

// ErrCalicoAPIUnavailable means the Calico API server is registered but
// not serving. calico-pni waits for it rather than writing the v1 CRDs
// behind its back.
var ErrCalicoAPIUnavailable = errors.New("the Calico API server (APIService v3.projectcalico.org) is registered but not available; waiting for it")

// ErrCalicoMissing means neither Calico API is served.
var ErrCalicoMissing = errors.New("Calico is not installed: the cluster serves neither projectcalico.org/v3 nor crd.projectcalico.org/v1 GlobalNetworkPolicies")

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// DetectAPI finds the Calico API to write, as Calico recommends:
// projectcalico.org/v3 when it is served (by the Calico API server or by
// native CRDs from 3.32); if the Calico API server is registered but not
// available, ErrCalicoAPIUnavailable (never a silent fall back); else the
// crd.projectcalico.org/v1 CRDs. The Calico version, which decides how v1
// objects are named, comes from ClusterInformation "default" unless version
// is given.
func DetectAPI(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, version string) (calico.API, error) {
	apiService, err := dyn.Resource(apiServiceGVR).Get(ctx, "v3.projectcalico.org", metav1.GetOptions{})
	switch {
	case err == nil:
		if !apiServiceAvailable(apiService) {
			return calico.API{}, ErrCalicoAPIUnavailable
		}
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		// Not registered, or calico-pni may not read APIServices: discovery
		// below still tells whether v3 is served.
	default:
		return calico.API{}, fmt.Errorf("reading APIService v3.projectcalico.org: %w", err)
	}

	for _, group := range []string{calico.GroupV3, calico.GroupV1} {
		api := calico.API{Group: group}
		served, err := ServesPolicies(disc, api.GroupVersion().String())
		if err != nil {
			return calico.API{}, err
		}
		if !served.Policies {
			continue
		}
		api.Tiers, api.Staged = served.Tiers, served.Staged
		v, err := calicoVersion(ctx, dyn, api, version)
		if err != nil {
			return calico.API{}, err
		}
		api.Version = v
		return api, nil
	}
	return calico.API{}, ErrCalicoMissing
}

func apiServiceAvailable(u *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Available" {
			return m["status"] == "True"
		}
	}
	return false
}

// Served says which of the resources calico-pni writes a Calico API serves.
type Served struct{ Policies, Tiers, Staged bool }

// ServesPolicies asks discovery what one Calico API group serves.
func ServesPolicies(disc discovery.DiscoveryInterface, groupVersion string) (Served, error) {
	var s Served
	list, err := disc.ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("discovering %s: %w", groupVersion, err)
	}
	for _, r := range list.APIResources {
		switch r.Name {
		case "globalnetworkpolicies":
			s.Policies = true
		case "tiers":
			s.Tiers = true
		case "stagedglobalnetworkpolicies":
			s.Staged = true
		}
	}
	return s, nil
}

// calicoVersion reads spec.calicoVersion of ClusterInformation "default",
// which calico/node keeps up to date. override wins when set. In v3 mode
// the version only matters for features, so a missing one is not an error.
func calicoVersion(ctx context.Context, dyn dynamic.Interface, api calico.API, override string) (calico.Version, error) {
	if override != "" {
		return calico.ParseVersion(override)
	}
	gvr := api.GroupVersion().WithResource("clusterinformations")
	ci, err := dyn.Resource(gvr).Get(ctx, "default", metav1.GetOptions{})
	text := ""
	if err == nil {
		text, _, _ = unstructured.NestedString(ci.Object, "spec", "calicoVersion")
	}
	if text == "" {
		if api.Group == calico.GroupV3 {
			return calico.Version{}, nil
		}
		why := "it has no spec.calicoVersion"
		if err != nil {
			why = err.Error()
		}
		return calico.Version{}, fmt.Errorf("cannot tell the Calico version from ClusterInformation default (%s), and the names of crd.projectcalico.org/v1 policies depend on it; give it with --calico-version (e.g. v3.28.5)", why)
	}
	return calico.ParseVersion(text)
}
