package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/policies"
)

// api detects the Calico API as the daemon does.
func (s *soak) api() (calico.API, error) {
	return cluster.DetectAPI(context.Background(), s.disc, s.e.Dynamic, "")
}

// converged reports whether the cluster holds exactly what `calico-pni
// render` computes for it with the configuration in force: every managed
// policy and tier whole, none more or less, and every namespace's
// calico-pni labels and status.
func (s *soak) converged() error {
	ctx := context.Background()
	api, err := s.api()
	if err != nil {
		return err
	}
	snap, err := cluster.ListSnapshot(ctx, s.e.Kube)
	if err != nil {
		return err
	}
	snap.CalicoVersion = api.Version
	desired := policies.Generate(snap, s.cfg)
	if len(desired.Invalid) > 0 {
		return fmt.Errorf("render finds invalid policies: %v", desired.Invalid)
	}
	want := map[string]*unstructured.Unstructured{}
	for _, p := range desired.Policies {
		u := api.Object(p)
		want[u.GetKind()+"/"+u.GetName()] = u
	}
	if desired.Tier != nil {
		u := api.TierObject(*desired.Tier)
		want["Tier/"+u.GetName()] = u
	}
	got, err := s.liveObjects(api, true)
	if err != nil {
		return err
	}
	for key, g := range got {
		w, ok := want[key]
		if !ok {
			return fmt.Errorf("%s is on the server, not in render's output", key)
		}
		if err := sameObject(w, g); err != nil {
			return err
		}
	}
	for key := range want {
		if _, ok := got[key]; !ok {
			return fmt.Errorf("%s is missing", key)
		}
	}
	live, err := s.e.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	byName := map[string]map[string]string{}
	status := map[string]string{}
	for _, ns := range live.Items {
		byName[ns.Name] = ns.Labels
		status[ns.Name] = ns.Annotations[policies.StatusAnnotation]
	}
	for _, d := range desired.Namespaces {
		own := map[string]string{}
		for k, v := range byName[d.Name] {
			if strings.HasPrefix(k, policies.LabelPrefix) {
				own[k] = v
			}
		}
		if !maps.Equal(own, d.Labels) {
			return fmt.Errorf("namespace %s has calico-pni labels %v, render says %v", d.Name, own, d.Labels)
		}
		// The daemon adds the flow evidence of a staged namespace
		// (pending; without Goldmane, why it is unavailable) beside what
		// the generator decides; the soak runs without flow logs.
		var got policies.Status
		if err := json.Unmarshal([]byte(status[d.Name]), &got); err == nil {
			got.Pending = nil
			status[d.Name] = got.Encode()
		}
		if w := d.Status.Encode(); status[d.Name] != w {
			return fmt.Errorf("namespace %s status\n got %s\nwant %s", d.Name, status[d.Name], w)
		}
	}
	return nil
}

// liveObjects reads the Calico policies and tiers on the server by
// kind/name: calico-pni's (managedOnly) or every one.
func (s *soak) liveObjects(api calico.API, managedOnly bool) (map[string]*unstructured.Unstructured, error) {
	opts := metav1.ListOptions{}
	if managedOnly {
		opts.LabelSelector = calico.ManagedByLabel + "=" + calico.ManagedByValue
	}
	kinds := api.PolicyKinds()
	if api.Tiers {
		kinds = append(kinds, "Tier")
	}
	out := map[string]*unstructured.Unstructured{}
	for _, kind := range kinds {
		list, err := s.e.Dynamic.Resource(api.Resource(kind)).List(context.Background(), opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			u := &list.Items[i]
			if kind == "Tier" && !managedOnly && u.GetLabels()[calico.ManagedByLabel] != calico.ManagedByValue {
				continue
			}
			u.SetKind(kind)
			out[kind+"/"+u.GetName()] = u
		}
	}
	return out, nil
}

// sameObject compares what calico-pni writes: its labels, its description
// and the whole spec.
func sameObject(want, got *unstructured.Unstructured) error {
	for k, v := range want.GetLabels() {
		if got.GetLabels()[k] != v {
			return fmt.Errorf("%s: label %s=%q, render says %q", want.GetName(), k, got.GetLabels()[k], v)
		}
	}
	if g, w := got.GetAnnotations()[calico.DescriptionAnnotation], want.GetAnnotations()[calico.DescriptionAnnotation]; g != w {
		return fmt.Errorf("%s: description %q, render says %q", want.GetName(), g, w)
	}
	ws, _ := json.Marshal(want.Object["spec"])
	gs, _ := json.Marshal(got.Object["spec"])
	if string(ws) != string(gs) {
		return fmt.Errorf("%s: spec\n got %s\nwant %s", want.GetName(), gs, ws)
	}
	return nil
}
