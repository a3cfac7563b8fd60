package calico

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TierSpec is the spec of a Calico Tier (Calico Open Source from 3.29).
type TierSpec struct {
	// Order places the tier among the others: lower first; a tier without
	// one comes last. Calico's own: adminnetworkpolicy and kube-admin
	// 1,000; default 1,000,000; baselineadminnetworkpolicy and
	// kube-baseline 10,000,000.
	Order *float64 `json:"order,omitempty"`
	// DefaultAction applies when policies of the tier selected an endpoint
	// and none of their rules decided: Deny (Calico's default) or Pass.
	DefaultAction Action `json:"defaultAction,omitempty"`
}

// Tier is a tier as calico-pni wants it.
type Tier struct {
	Name        string
	Description string
	Spec        TierSpec
}

// TierObject renders t as the object calico-pni writes through a.
func (a API) TierObject(t Tier) *unstructured.Unstructured {
	meta := metav1.ObjectMeta{
		Name:   t.Name,
		Labels: map[string]string{ManagedByLabel: ManagedByValue},
	}
	if t.Description != "" {
		meta.Annotations = map[string]string{DescriptionAnnotation: t.Description}
	}
	obj := struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              TierSpec `json:"spec"`
	}{metav1.TypeMeta{APIVersion: a.GroupVersion().String(), Kind: "Tier"}, meta, t.Spec}
	u, err := toUnstructured(obj)
	if err != nil {
		panic(fmt.Sprintf("rendering tier %s: %v", t.Name, err))
	}
	return u
}

// TierSpecOf reads the spec of a stored Tier.
func TierSpecOf(u *unstructured.Unstructured) (TierSpec, error) {
	var spec TierSpec
	err := decodeSpec(u, "Tier", &spec)
	return spec, err
}

// TierSpecEqual compares tier specs as Calico reads them: no default
// action is Deny.
func TierSpecEqual(a, b TierSpec) bool {
	norm := func(s TierSpec) []byte {
		if s.DefaultAction == "" {
			s.DefaultAction = Deny
		}
		out, _ := json.Marshal(s)
		return out
	}
	return bytes.Equal(norm(a), norm(b))
}

// ValidateTier checks a tier the way Calico would.
func ValidateTier(t Tier) error {
	var errs []string
	if msgs := validation.IsDNS1123Label(t.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Sprintf("metadata.name: %q: %s", t.Name, strings.Join(msgs, "; ")))
	}
	if strings.Contains(t.Name, ".") {
		errs = append(errs, fmt.Sprintf("metadata.name: %q holds a dot; policy names carry the tier before a dot", t.Name))
	}
	switch t.Name {
	case DefaultTier, "adminnetworkpolicy", "baselineadminnetworkpolicy", "kube-admin", "kube-baseline":
		errs = append(errs, fmt.Sprintf("metadata.name: %q is one of Calico's own tiers", t.Name))
	}
	if t.Spec.Order == nil {
		errs = append(errs, "spec.order: must be set: a tier without order comes after the default tier")
	}
	if a := t.Spec.DefaultAction; a != "" && a != Deny && a != Pass {
		errs = append(errs, fmt.Sprintf("spec.defaultAction: %q: must be Deny or Pass", a))
	}
	if len(errs) > 0 {
		return fmt.Errorf("Tier %s is invalid: %s", t.Name, strings.Join(errs, "; "))
	}
	return nil
}
