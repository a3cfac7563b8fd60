package replay

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Index is a State prepared for evaluation: policies read and sorted in
// their tiers, network sets and Service endpoints collected. It is not
// safe for concurrent use (it caches endpoint labels as it goes).
type Index struct {
	state *State
	tiers []*tierPolicies
	// broken are policies the evaluator cannot read: a connection of a
	// pod they may select is an error.
	broken   []*policy
	sets     []*networkSet
	services map[serviceRef][]serviceEndpoint
	// err makes every evaluation an error: an object that changes what
	// selectors or services match could not be read.
	err error
	// labels and selections cache, by pod, its endpoint labels and
	// the policies that select it.
	labels     map[*Pod]labels
	selections map[selectionKey]selection
}

// tierPolicies is a tier with its enforced policies in Felix's order.
type tierPolicies struct {
	tier     tier
	err      error // the tier's policies cannot be ordered or ended
	policies []*policy
}

// compiler keeps the policies read from stored objects, so that a replay
// reads each object once however many states hold it.
type compiler struct {
	policies map[*unstructured.Unstructured]*policy
}

func newCompiler() *compiler {
	return &compiler{policies: map[*unstructured.Unstructured]*policy{}}
}

func (c *compiler) policy(k Key, u *unstructured.Unstructured) *policy {
	if p, ok := c.policies[u]; ok {
		return p
	}
	var p *policy
	if k.Group == groupNetworking {
		p = kubernetesPolicy(u)
	} else {
		p = calicoPolicy(u, k.Group == groupCalicoV3)
	}
	c.policies[u] = p
	return p
}

// NewIndex prepares a state for evaluation. The index reads the state as
// it evaluates: change the state only once done with the index.
func NewIndex(s *State) *Index { return newCompiler().index(s) }

func (c *compiler) index(s *State) *Index {
	ix := &Index{state: s, services: map[serviceRef][]serviceEndpoint{}, labels: map[*Pod]labels{}, selections: map[selectionKey]selection{}}
	keys := slices.SortedFunc(maps.Keys(s.Objects), compareKeys)
	tiers, errs := readTiers(s, keys)
	for _, k := range keys {
		u := s.Objects[k]
		switch k.Resource {
		case "globalnetworkpolicies", "networkpolicies":
			p := c.policy(k, u)
			if p.err != nil {
				ix.broken = append(ix.broken, p)
				continue
			}
			tp := tiers[p.tier]
			if tp == nil {
				tp = &tierPolicies{tier: tier{name: p.tier, order: unordered}, err: fmt.Errorf("tier %s has no Tier object", p.tier)}
				tiers[p.tier] = tp
			}
			tp.policies = append(tp.policies, p)
		case "globalnetworksets", "networksets":
			set, err := readNetworkSet(u)
			errs = append(errs, err)
			ix.sets = append(ix.sets, set)
		case "endpointslices":
			errs = append(errs, ix.addSlice(u))
		}
	}
	ix.err = errors.Join(errs...)
	for _, tp := range tiers {
		slices.SortFunc(tp.policies, policyLess)
		ix.tiers = append(ix.tiers, tp)
	}
	// Felix's tier order (felix/calc/policy_sorter.go, TierLess): by
	// order, a tier without one last, then by name.
	slices.SortFunc(ix.tiers, func(a, b *tierPolicies) int {
		return cmp.Or(cmp.Compare(a.tier.order, b.tier.order), cmp.Compare(a.tier.name, b.tier.name))
	})
	return ix
}

// policyLess is Felix's order inside a tier (felix/calc/policy_sorter.go,
// PolKVLess): by order, a policy without one last, then by name; the
// namespace and kind make the order total.
func policyLess(a, b *policy) int {
	return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.name, b.name),
		cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.kind, b.kind))
}

type tierSpec struct {
	Order         *float64 `json:"order"`
	DefaultAction string   `json:"defaultAction"`
}

// readTiers reads the Tiers: order (none: last) and default action (Deny
// unless Pass). The default tier exists without an object; a tier stored
// in both Calico API groups must be the same in both.
func readTiers(s *State, keys []Key) (map[string]*tierPolicies, []error) {
	tiers := map[string]*tierPolicies{}
	var errs []error
	for _, k := range keys {
		if k.Resource != "tiers" {
			continue
		}
		var spec tierSpec
		if err := decodeStrict(s.Objects[k].Object["spec"], &spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: spec: %w", k, err))
			continue
		}
		t := tier{name: k.Name, order: unordered, defaultAction: actionDeny}
		if spec.Order != nil {
			t.order = *spec.Order
		}
		switch spec.DefaultAction {
		case "", actionDeny:
		case actionPass:
			t.defaultAction = actionPass
		default:
			errs = append(errs, fmt.Errorf("%s: defaultAction %q is neither Deny nor Pass", k, spec.DefaultAction))
			continue
		}
		if tp := tiers[k.Name]; tp != nil && tp.tier != t {
			tp.err = fmt.Errorf("tier %s is stored in both Calico API groups, with different order or default action", k.Name)
			continue
		}
		tiers[k.Name] = &tierPolicies{tier: t}
	}
	if tiers[defaultTier.name] == nil {
		tiers[defaultTier.name] = &tierPolicies{tier: defaultTier}
	}
	return tiers, errs
}

// networkSetSpec is the spec of a GlobalNetworkSet or NetworkSet.
type networkSetSpec struct {
	Nets []string `json:"nets"`
}

func readNetworkSet(u *unstructured.Unstructured) (*networkSet, error) {
	set := &networkSet{namespace: u.GetNamespace(), name: u.GetName(), own: u.GetLabels()}
	var spec networkSetSpec
	if err := decodeStrict(u.Object["spec"], &spec); err != nil {
		return set, fmt.Errorf("network set %s/%s: spec: %w", set.namespace, set.name, err)
	}
	nets, err := parseNets(spec.Nets)
	if err != nil {
		return set, fmt.Errorf("network set %s/%s: nets: %w", set.namespace, set.name, err)
	}
	set.nets = nets
	return set, nil
}

// addSlice collects a Service's endpoints the way Felix's service index
// does (felix/calc/serviceindex): every address of every endpoint,
// whatever its conditions, with each of the slice's ports that has a
// number (TCP unless the port says otherwise).
func (ix *Index) addSlice(u *unstructured.Unstructured) error {
	var es discoveryv1.EndpointSlice
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &es); err != nil {
		return fmt.Errorf("EndpointSlice %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	svc := serviceRef{namespace: es.Namespace, name: es.Labels[discoveryv1.LabelServiceName]}
	for _, ep := range es.Endpoints {
		for _, a := range ep.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("EndpointSlice %s/%s: address %q: %w", es.Namespace, es.Name, a, err)
			}
			if len(es.Ports) == 0 {
				// The address still counts for a source match.
				ix.services[svc] = append(ix.services[svc], serviceEndpoint{addr: addr})
			}
			for _, p := range es.Ports {
				if p.Port == nil {
					continue
				}
				proto := uint8(6)
				if p.Protocol != nil {
					proto, _ = protocolByName(string(*p.Protocol))
				}
				ix.services[svc] = append(ix.services[svc], serviceEndpoint{addr: addr, port: uint16(*p.Port), protocol: proto})
			}
		}
	}
	return nil
}
