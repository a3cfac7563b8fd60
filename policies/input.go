package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/calico-pni/calico-pni/rancher"
)

// SnapshotBuilder collects the generator's input from typed objects, with
// the checks a hand-written file needs: the reader of cluster files
// (package objects) feeds it the objects it decoded, once, for `render -f`
// and `explain`/`matrix --preview`. The live listers fill a Snapshot with
// the same conversions (NamespaceFrom, NodeFrom, ...), from objects the
// API server has already checked. Errors name the field; the caller names
// the object.
type SnapshotBuilder struct {
	snap   Snapshot
	slices []*discoveryv1.EndpointSlice
}

// AddNamespace adds a namespace, refusing a name or labels no API server
// would accept.
func (b *SnapshotBuilder) AddNamespace(ns *corev1.Namespace) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	b.snap.Namespaces = append(b.snap.Namespaces, NamespaceFrom(ns))
	return nil
}

// AddNode adds a node, refusing an address that is not an IP address.
func (b *SnapshotBuilder) AddNode(n *corev1.Node) error {
	if err := CheckNodeAddresses(n); err != nil {
		return err
	}
	b.snap.Nodes = append(b.snap.Nodes, NodeFrom(n))
	return nil
}

// AddService adds a Service, of which the generator reads the external
// ones (NodePort, LoadBalancer).
func (b *SnapshotBuilder) AddService(svc *corev1.Service) error {
	if svc.Namespace == "" {
		return errors.New("metadata.namespace must be set")
	}
	if external, ok := ServiceFrom(svc); ok {
		b.snap.ExternalServices = append(b.snap.ExternalServices, external)
	}
	return nil
}

// AddPod adds a pod, of which the generator reads the host ports.
func (b *SnapshotBuilder) AddPod(pod *corev1.Pod) error {
	if pod.Namespace == "" {
		return errors.New("metadata.namespace must be set")
	}
	if hp, ok := HostPortPodFrom(pod); ok {
		b.snap.HostPortPods = append(b.snap.HostPortPods, hp)
	}
	return nil
}

// AddEndpointSlice adds an EndpointSlice of default/kubernetes, where the
// API server is; it reports false for any other slice, which the
// generator does not read.
func (b *SnapshotBuilder) AddEndpointSlice(s *discoveryv1.EndpointSlice) bool {
	if s.Namespace != "default" || s.Labels[discoveryv1.LabelServiceName] != "kubernetes" {
		return false
	}
	b.slices = append(b.slices, s)
	return true
}

// AddNetworkPolicy adds a NetworkPolicy of Rancher's own project
// isolation (the generator copies them while they exist); it reports
// false for any other, which the generator does not read.
func (b *SnapshotBuilder) AddNetworkPolicy(np *networkingv1.NetworkPolicy) bool {
	if !rancher.IsRancherPolicy(np.Labels) {
		return false
	}
	b.snap.RancherPolicies = append(b.snap.RancherPolicies, np)
	return true
}

// Merge adds what another builder collected, after what this one did.
func (b *SnapshotBuilder) Merge(o *SnapshotBuilder) {
	b.snap.Namespaces = append(b.snap.Namespaces, o.snap.Namespaces...)
	b.snap.Nodes = append(b.snap.Nodes, o.snap.Nodes...)
	b.snap.ExternalServices = append(b.snap.ExternalServices, o.snap.ExternalServices...)
	b.snap.HostPortPods = append(b.snap.HostPortPods, o.snap.HostPortPods...)
	b.snap.RancherPolicies = append(b.snap.RancherPolicies, o.snap.RancherPolicies...)
	b.slices = append(b.slices, o.slices...)
}

// Snapshot returns what was collected.
func (b *SnapshotBuilder) Snapshot() Snapshot {
	snap := b.snap
	snap.APIEndpoints = APIEndpointsFrom(b.slices)
	return snap
}

// checkNamespace applies the API server's rules to what the generator
// reads, so a hand-written file cannot feed it what no cluster holds.
func checkNamespace(ns *corev1.Namespace) error {
	if msgs := validation.IsDNS1123Label(ns.Name); len(msgs) > 0 {
		return fmt.Errorf("metadata.name: %q is not a namespace name: %s", ns.Name, strings.Join(msgs, "; "))
	}
	for k, v := range ns.Labels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return fmt.Errorf("metadata.labels: key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return fmt.Errorf("metadata.labels.%s: value %q: %s", k, v, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// CheckNodeAddresses reports an internal or external address of a node
// that is not an IP address, which NodeFrom would leave out without a
// word.
func CheckNodeAddresses(n *corev1.Node) error {
	for i, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if _, err := netip.ParseAddr(a.Address); err != nil {
			return fmt.Errorf("status.addresses[%d].address: %q is not an IP address", i, a.Address)
		}
	}
	return nil
}

// Kubernetes' YAML decoder follows YAML 1.1, which reads an unquoted y, n,
// yes, no, on, off, true or false as a boolean and 1.0 or 010 as a number.
// Where a string belongs (a label value, a port name) the converters then
// say "unrecognized type: string", and a namespace's labels vanish
// without a word; these name the field and the fix instead.

// CheckMetadataStrings reports a label or annotation of an object whose
// value is not a string.
func CheckMetadataStrings(obj map[string]any) error {
	meta, _ := obj["metadata"].(map[string]any)
	for _, field := range []string{"labels", "annotations"} {
		values, ok := meta[field].(map[string]any)
		if !ok {
			if meta[field] != nil {
				return fmt.Errorf("metadata.%s: must be a map of keys to strings, not %v", field, meta[field])
			}
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(values)) {
			if err := notAString("metadata."+field+"."+k, k, values[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ConvertObject converts a decoded object into a typed Kubernetes object.
// A string field that holds a boolean or a number gets an error naming it.
func ConvertObject(obj map[string]any, into any) error {
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
	if err == nil {
		return nil
	}
	// encoding/json says which field failed, where the converter does not.
	b, jsonErr := json.Marshal(obj)
	if jsonErr != nil {
		return err
	}
	fresh := reflect.New(reflect.TypeOf(into).Elem()).Interface()
	if jsonErr = json.Unmarshal(b, fresh); jsonErr != nil {
		if explained := ExplainNotString(obj, "", jsonErr); explained != jsonErr {
			return explained
		}
	}
	return err
}

// ExplainNotString turns a JSON decoding error about a string field that
// holds a boolean or a number into one naming the field, with list
// indices and map keys, and the fix. obj is what was decoded, found at
// path prefix of its document. Other errors are returned as they are.
func ExplainNotString(obj any, prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Type == nil || te.Type.Kind() != reflect.String || te.Field == "" {
		return err
	}
	if found := findNotString(obj, strings.Split(te.Field, "."), prefix); found != nil {
		return found
	}
	return err
}

// findNotString looks along a field path (whose lists and map keys
// encoding/json leaves out) for a value that is not a string.
func findNotString(node any, parts []string, at string) error {
	if list, ok := node.([]any); ok {
		for i, item := range list {
			if err := findNotString(item, parts, at+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	m, isMap := node.(map[string]any)
	if len(parts) == 0 {
		if !isMap {
			key := at[strings.LastIndex(at, ".")+1:]
			if i := strings.IndexByte(key, '['); i >= 0 {
				key = key[:i]
			}
			return notAString(at, key, node)
		}
		// A map of strings, such as labels: the key is part of the path.
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := notAString(joinPath(at, k), k, m[k]); err != nil {
				return err
			}
		}
		return nil
	}
	if !isMap {
		return nil
	}
	return findNotString(m[parts[0]], parts[1:], joinPath(at, parts[0]))
}

func joinPath(at, field string) string {
	if at == "" {
		return field
	}
	return at + "." + field
}

// notAString explains a value YAML read as something other than a string.
func notAString(path, key string, v any) error {
	switch v := v.(type) {
	case string, nil:
		return nil
	case bool:
		return fmt.Errorf("%s: the value is the boolean %v, not a string: YAML 1.1 reads unquoted y, yes, on, true, n, no, off and false as booleans; quote it (%s: \"...\")", path, v, key)
	case float64, float32, int, int64, int32, json.Number:
		return fmt.Errorf("%s: the value is the number %v, not a string: YAML reads unquoted 1.0, 010 or 1e3 as numbers; quote it (%s: \"...\")", path, v, key)
	}
	return fmt.Errorf("%s: must be a string", path)
}
