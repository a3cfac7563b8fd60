package policies

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/calico"
)

// Manifests returns the objects of d in the order that is safe to apply
// them to a cluster that has none of calico-pni's yet: calico-pni's tier
// (in tier mode), allow policies, then baseline policies, then the
// namespaces with their calico-pni labels and status, so that no namespace
// is isolated before every policy it needs exists. Namespace objects carry
// only calico-pni's keys; applying them adds those keys and leaves the
// others.
func (d Desired) Manifests(api calico.API, withNamespaces bool) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	if d.Tier != nil {
		out = append(out, api.TierObject(*d.Tier))
	}
	for _, p := range d.Policies {
		out = append(out, api.Object(p))
	}
	if !withNamespaces {
		return out
	}
	for _, ns := range d.Namespaces {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns.Name)
		if len(ns.Labels) > 0 {
			u.SetLabels(ns.Labels)
		}
		u.SetAnnotations(map[string]string{StatusAnnotation: ns.Status.Encode()})
		out = append(out, u)
	}
	return out
}

// YAML renders objects as a multi-document YAML stream.
func YAML(objects []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objects {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
