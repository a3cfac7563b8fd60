package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ReadSnapshot reads a snapshot from Kubernetes objects in YAML or JSON: one
// object, a List (as `kubectl get ns,nodes,svc,pods -A -o yaml` prints), or
// several documents separated by ---. It reads Namespaces, Nodes, Services,
// Pods and the EndpointSlices of default/kubernetes; other objects are
// skipped and named in the returned notes. Errors name the source, the document and the
// object.
func ReadSnapshot(source string, data []byte) (Snapshot, []string, error) {
	r := &snapshotReader{source: source}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Snapshot{}, nil, fmt.Errorf("%s: document %d: not valid YAML or JSON: %w", source, doc, err)
		}
		if obj == nil {
			continue
		}
		if err := r.object(fmt.Sprintf("document %d", doc), obj); err != nil {
			return Snapshot{}, nil, err
		}
	}
	return r.finish()
}

// SnapshotFromObject reads a snapshot from one object already decoded,
// such as a List, as ReadSnapshot reads a stream that holds only that
// object: the same checks, notes and errors, which name the object as
// document 1 of source.
func SnapshotFromObject(source string, obj map[string]any) (Snapshot, []string, error) {
	r := &snapshotReader{source: source}
	if err := r.object("document 1", obj); err != nil {
		return Snapshot{}, nil, err
	}
	return r.finish()
}

type snapshotReader struct {
	source string
	snap   Snapshot
	slices []*discoveryv1.EndpointSlice
	notes  []string
	seen   map[string]bool
}

// finish completes the snapshot once every object is read.
func (r *snapshotReader) finish() (Snapshot, []string, error) {
	r.snap.APIEndpoints = APIEndpointsFrom(r.slices)
	return r.snap, r.notes, nil
}

func (r *snapshotReader) object(where string, obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	kind, apiVersion, name := u.GetKind(), u.GetAPIVersion(), u.GetName()
	at := fmt.Sprintf("%s: %s", r.source, where)
	if kind == "" || apiVersion == "" {
		return fmt.Errorf("%s: apiVersion and kind must be set (this reads Kubernetes objects such as `kubectl get ns,nodes -o yaml` prints)", at)
	}
	if strings.HasSuffix(kind, "List") {
		items, ok := obj["items"].([]any)
		if !ok && obj["items"] != nil {
			return fmt.Errorf("%s (%s): items must be a list", at, kind)
		}
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("%s (%s): items[%d] is not an object", at, kind, i)
			}
			if err := r.object(fmt.Sprintf("%s, items[%d]", where, i), m); err != nil {
				return err
			}
		}
		return nil
	}
	at = fmt.Sprintf("%s (%s %s)", at, kind, name)
	if name == "" && (kind == "Namespace" || kind == "Node" || kind == "EndpointSlice" || kind == "Service" || kind == "Pod") {
		if v, found, _ := unstructured.NestedFieldNoCopy(obj, "metadata", "name"); found {
			return fmt.Errorf("%s: metadata.name must be a string, not %v (quote it: YAML reads n, no, on, 1 as other types)", at, v)
		}
		return fmt.Errorf("%s: metadata.name must be set", at)
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	key := kind + "/" + u.GetNamespace() + "/" + name
	if r.seen[key] {
		return fmt.Errorf("%s: this object appears twice", at)
	}
	r.seen[key] = true
	if err := CheckMetadataStrings(obj); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}

	switch {
	case kind == "Namespace" && apiVersion == "v1":
		var ns corev1.Namespace
		if err := ConvertObject(obj, &ns); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if err := checkNamespace(&ns); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		r.snap.Namespaces = append(r.snap.Namespaces, NamespaceFrom(&ns))
	case kind == "Node" && apiVersion == "v1":
		var n corev1.Node
		if err := ConvertObject(obj, &n); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if err := CheckNodeAddresses(&n); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		r.snap.Nodes = append(r.snap.Nodes, NodeFrom(&n))
	case kind == "Service" && apiVersion == "v1":
		var svc corev1.Service
		if err := ConvertObject(obj, &svc); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if svc.Namespace == "" {
			return fmt.Errorf("%s: metadata.namespace must be set", at)
		}
		if external, ok := ServiceFrom(&svc); ok {
			r.snap.ExternalServices = append(r.snap.ExternalServices, external)
		}
	case kind == "Pod" && apiVersion == "v1":
		var pod corev1.Pod
		if err := ConvertObject(obj, &pod); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if pod.Namespace == "" {
			return fmt.Errorf("%s: metadata.namespace must be set", at)
		}
		if hp, ok := HostPortPodFrom(&pod); ok {
			r.snap.HostPortPods = append(r.snap.HostPortPods, hp)
		}
	case kind == "EndpointSlice" && apiVersion == "discovery.k8s.io/v1":
		var s discoveryv1.EndpointSlice
		if err := ConvertObject(obj, &s); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if s.Namespace != "default" || s.Labels[discoveryv1.LabelServiceName] != "kubernetes" {
			r.notes = append(r.notes, fmt.Sprintf("%s: skipped: not an EndpointSlice of default/kubernetes", at))
			return nil
		}
		r.slices = append(r.slices, &s)
	default:
		r.notes = append(r.notes, fmt.Sprintf("%s: skipped: only v1 Namespace, Node, Service, Pod and discovery.k8s.io/v1 EndpointSlice are read", at))
	}
	return nil
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
