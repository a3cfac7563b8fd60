package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The spec of a Calico GlobalNetworkPolicy or NetworkPolicy, with the
// JSON names of projectcalico.org/v3 (api/pkg/apis/projectcalico/v3 in
// projectcalico/calico; crd.projectcalico.org/v1 has the same). A field
// not listed here is an error, so that nothing Calico would enforce is
// left out silently.
type calicoSpec struct {
	Tier                   string       `json:"tier"`
	Order                  *float64     `json:"order"`
	Selector               string       `json:"selector"`
	NamespaceSelector      string       `json:"namespaceSelector"`
	ServiceAccountSelector string       `json:"serviceAccountSelector"`
	Types                  []string     `json:"types"`
	Ingress                []calicoRule `json:"ingress"`
	Egress                 []calicoRule `json:"egress"`
	DoNotTrack             bool         `json:"doNotTrack"`
	PreDNAT                bool         `json:"preDNAT"`
	ApplyOnForward         bool         `json:"applyOnForward"`
	PerformanceHints       []string     `json:"performanceHints"`
}

type calicoRule struct {
	Action      string          `json:"action"`
	IPVersion   *int            `json:"ipVersion"`
	Protocol    json.RawMessage `json:"protocol"`
	NotProtocol json.RawMessage `json:"notProtocol"`
	ICMP        json.RawMessage `json:"icmp"`
	NotICMP     json.RawMessage `json:"notICMP"`
	Source      calicoEntity    `json:"source"`
	Destination calicoEntity    `json:"destination"`
	HTTP        json.RawMessage `json:"http"`
	Metadata    json.RawMessage `json:"metadata"`
}

type calicoEntity struct {
	Nets              []string             `json:"nets"`
	NotNets           []string             `json:"notNets"`
	Selector          string               `json:"selector"`
	NotSelector       string               `json:"notSelector"`
	NamespaceSelector string               `json:"namespaceSelector"`
	Ports             []json.RawMessage    `json:"ports"`
	NotPorts          []json.RawMessage    `json:"notPorts"`
	ServiceAccounts   *serviceAccountMatch `json:"serviceAccounts"`
	Services          *struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"services"`
}

// decodeStrict decodes a part of an object, refusing unknown fields.
func decodeStrict(v any, into any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// calicoPolicy reads a stored Calico GlobalNetworkPolicy (namespace "")
// or NetworkPolicy. v3 says whether it came from projectcalico.org/v3,
// whose API server defaults types, or crd.projectcalico.org/v1, where
// nothing does.
func calicoPolicy(u *unstructured.Unstructured, v3 bool) *policy {
	kind := kindGNP
	if u.GetNamespace() != "" {
		kind = kindNP
	}
	p := &policy{kind: kind, namespace: u.GetNamespace(), name: u.GetName(), order: unordered}
	var spec calicoSpec
	if err := decodeStrict(u.Object["spec"], &spec); err != nil {
		p.err = fmt.Errorf("%s: spec: %w", p, err)
		return p
	}
	if err := p.fromSpec(u.GetName(), spec, v3); err != nil {
		p.err = fmt.Errorf("%s: %w", p, err)
	}
	return p
}

func (p *policy) fromSpec(stored string, spec calicoSpec, v3 bool) error {
	var err error
	if p.tier, p.name, err = tierAndName(stored, spec.Tier); err != nil {
		return err
	}
	if spec.Order != nil {
		p.order = *spec.Order
	}
	switch {
	case spec.DoNotTrack, spec.PreDNAT, spec.ApplyOnForward:
		// They apply to host endpoints only (and forwarded traffic),
		// which the evaluator does not model.
		return errors.New("doNotTrack, preDNAT and applyOnForward are not modelled")
	case p.kind == kindNP && spec.NamespaceSelector != "":
		return errors.New("a NetworkPolicy has no spec.namespaceSelector")
	}
	if p.kind == kindGNP {
		p.selects, err = globalPolicySelector(spec.Selector, spec.NamespaceSelector, spec.ServiceAccountSelector)
	} else {
		p.selects, err = namespacedPolicySelector(p.namespace, spec.Selector, spec.ServiceAccountSelector)
	}
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if p.governs, err = policyTypes(spec, v3); err != nil {
		return err
	}
	for d, rules := range [2][]calicoRule{ingress: spec.Ingress, egress: spec.Egress} {
		for i, r := range rules {
			cr, err := compileRule(r, p.namespace)
			if err != nil {
				return fmt.Errorf("%s rule %d: %w", direction(d), i, err)
			}
			p.rules[d] = append(p.rules[d], cr)
		}
	}
	return nil
}

// tierAndName reads a policy's tier and its name without the tier
// prefix. Calico up to 3.31 stores a policy of tier t as "t.<name>" and
// takes the tier from the text before the first dot (3.28 strips it on
// read, and knows only the default tier); from 3.32 spec.tier says the
// tier and names carry no prefix. A prefix that disagrees with spec.tier
// would be read differently by different versions: an error.
func tierAndName(stored, specTier string) (string, string, error) {
	prefix, rest, dotted := strings.Cut(stored, ".")
	switch {
	case dotted && specTier != "" && prefix != specTier:
		return "", "", fmt.Errorf("name %q has the tier prefix %q but spec.tier is %q: Calico versions disagree on its tier", stored, prefix, specTier)
	case dotted:
		return prefix, rest, nil
	case specTier != "":
		return specTier, stored, nil
	}
	return defaultTier.name, stored, nil
}

// policyTypes are the directions a policy governs. Felix applies a
// policy without types in both directions (felix/calc/policy_sorter.go,
// ExtractPolicyMetadata); a crd.projectcalico.org/v1 object keeps what it
// was written with. Calico's v3 API server defaults types: Ingress when
// the policy has ingress rules or none at all, Egress when it has egress
// rules only, both when both (api/pkg/defaults).
func policyTypes(spec calicoSpec, v3 bool) ([2]bool, error) {
	var out [2]bool
	if len(spec.Types) == 0 {
		if !v3 {
			return [2]bool{true, true}, nil
		}
		out[ingress] = len(spec.Ingress) > 0 || len(spec.Egress) == 0
		out[egress] = len(spec.Egress) > 0
		return out, nil
	}
	// Felix compares types without case.
	for _, t := range spec.Types {
		switch strings.ToLower(t) {
		case "ingress":
			out[ingress] = true
		case "egress":
			out[egress] = true
		default:
			return out, fmt.Errorf("types: %q is neither Ingress nor Egress", t)
		}
	}
	return out, nil
}
