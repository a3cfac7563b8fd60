// Package objects reads Kubernetes and Calico objects into the policy
// evaluator's model: the output of `kubectl get ... -o yaml` (any subset
// of the kinds, one object, Lists, several documents), or the objects the
// live reader in package cluster lists from a cluster. Errors name the
// source, the document and the object.
package objects

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/policies"
	"github.com/calico-pni/calico-pni/rancher"
)

// Reader collects objects into a Cluster. Add objects, then call Finish.
type Reader struct {
	// KeepSnapshot also collects, from the same objects, the input of
	// calico-pni's generator (Namespaces, Nodes, Services, Pods, the
	// EndpointSlices of default/kubernetes, Rancher's NetworkPolicies),
	// for `render -f` and a preview. Set it before the first object.
	KeepSnapshot bool

	cluster evaluator.Cluster
	notes   []string
	// seenAt names where each object was read, by group/kind/id, to
	// report one that appears twice.
	seenAt map[string]string
	// snap collects the generator's input (nil unless KeepSnapshot).
	snap *policies.SnapshotBuilder
	// Calico policies by identity, per API group, to drop the
	// crd.projectcalico.org/v1 copies of what projectcalico.org/v3 lists.
	calico map[string]map[string]calicoPolicy
	// Kubernetes NetworkPolicies as the Calico API server lists them
	// (knp.default.<name>), used only if the policy itself is missing.
	knpFromV3  map[string]evaluator.Policy
	knpSeen    map[string]bool
	slices     map[string]*evaluator.ServiceEndpoints
	sliceOrder []string
	version    string
	rancher    map[string]rancher.IsolationPolicy
}

type calicoPolicy struct {
	policy evaluator.Policy
	staged bool
}

// Set is what a Reader read.
type Set struct {
	Cluster evaluator.Cluster
	// CalicoVersion is spec.calicoVersion of a ClusterInformation, if one
	// was read.
	CalicoVersion string
	// Snapshot is the generator's input, read with KeepSnapshot (nil
	// without).
	Snapshot *policies.Snapshot
	// Notes say what was skipped or chosen, for the user.
	Notes []string
	// Rancher holds the NetworkPolicies of Rancher's own project
	// isolation among those read, by the evaluator's name for them
	// (evaluator.Policy.String(): "shop/knp.default.np-default").
	Rancher map[string]rancher.IsolationPolicy
}

// NewReader returns an empty Reader.
func NewReader() *Reader {
	return &Reader{
		seenAt: map[string]string{}, calico: map[string]map[string]calicoPolicy{},
		knpFromV3: map[string]evaluator.Policy{}, knpSeen: map[string]bool{}, slices: map[string]*evaluator.ServiceEndpoints{},
	}
}

// ReadFile reads every object of a YAML or JSON stream. source names the
// stream in errors.
func (r *Reader) ReadFile(source string, data []byte) error {
	if done, err := r.readList(source, data); done {
		return err
	}
	return r.readDocuments(source, data)
}

// readDocuments reads the documents of a stream one by one.
func (r *Reader) readDocuments(source string, data []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: not valid YAML or JSON: %w", source, doc, err)
		}
		if obj == nil {
			continue
		}
		if err := r.Add(fmt.Sprintf("%s: document %d", source, doc), obj); err != nil {
			return err
		}
	}
}

// Add reads one object, or every item of a List. where names it in
// errors.
func (r *Reader) Add(where string, obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	kind, apiVersion := u.GetKind(), u.GetAPIVersion()
	if kind == "" || apiVersion == "" {
		return fmt.Errorf("%s: apiVersion and kind must be set (this reads Kubernetes objects as `kubectl get -o yaml` prints them)", where)
	}
	if strings.HasSuffix(kind, "List") {
		items, ok := obj["items"].([]any)
		if !ok && obj["items"] != nil {
			return fmt.Errorf("%s (%s): items must be a list", where, kind)
		}
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("%s (%s): items[%d] is not an object", where, kind, i)
			}
			if err := r.Add(fmt.Sprintf("%s, items[%d]", where, i), m); err != nil {
				return err
			}
		}
		return nil
	}
	for _, field := range []string{"name", "namespace"} {
		if v, found, _ := unstructured.NestedFieldNoCopy(obj, "metadata", field); found {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("%s (%s): metadata.%s must be a string, not %v (quote it: YAML reads n, no, on, 1 as other types)", where, kind, field, v)
			}
		}
	}
	name, namespace := u.GetName(), u.GetNamespace()
	id := name
	if namespace != "" {
		id = namespace + "/" + name
	}
	at := fmt.Sprintf("%s (%s %s)", where, kind, id)
	if name == "" {
		return fmt.Errorf("%s: metadata.name must be set", at)
	}
	if err := policies.CheckMetadataStrings(obj); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = ""
	}
	key := group + "/" + kind + "/" + id
	if _, ok := r.seenAt[key]; ok {
		return fmt.Errorf("%s: this object appears twice", at)
	}
	r.seenAt[key] = at

	if r.KeepSnapshot && r.snap == nil {
		r.snap = &policies.SnapshotBuilder{}
	}
	var err error
	switch group {
	case "", "discovery.k8s.io", "networking.k8s.io":
		err = r.kubernetes(u, apiVersion, at)
	case calico.GroupV1, calico.GroupV3:
		err = r.calicoObject(u, group)
	case "policy.networking.k8s.io":
		r.cluster.Unsupported = append(r.cluster.Unsupported, fmt.Sprintf("%s %s is present: Kubernetes admin network policies are enforced by Calico in tiers of their own, which the evaluator does not model", kind, id))
	default:
		r.notes = append(r.notes, at+": skipped: not a kind calico-pni reads")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

// Finish returns what was read.
func (r *Reader) Finish() *Set {
	c := r.cluster
	for _, p := range r.calico[calico.GroupV3] {
		r.addPolicy(&c, p)
	}
	dropped := 0
	for key, p := range r.calico[calico.GroupV1] {
		if _, ok := r.calico[calico.GroupV3][key]; ok {
			dropped++
			continue
		}
		r.addPolicy(&c, p)
	}
	if dropped > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d Calico policies appear in both crd.projectcalico.org/v1 and projectcalico.org/v3: the v3 objects are used", dropped))
	}
	for key, p := range r.knpFromV3 {
		if !r.knpSeen[key] {
			c.Policies = append(c.Policies, p)
		}
	}
	for _, key := range r.sliceOrder {
		c.Services = append(c.Services, *r.slices[key])
	}
	if r.version != "" {
		// The evaluator follows the version where Felix's releases differ
		// (how it orders policies of equal order).
		if v, err := calico.ParseVersion(r.version); err == nil {
			c.CalicoVersion = v
		} else {
			r.notes = append(r.notes, fmt.Sprintf("ClusterInformation: spec.calicoVersion: %v; evaluating as Calico 3.32 and later", err))
		}
	}
	sortCluster(&c)
	set := &Set{Cluster: c, CalicoVersion: r.version, Notes: r.notes}
	if r.snap != nil {
		snap := r.snap.Snapshot()
		set.Snapshot = &snap
	}
	set.Rancher = r.rancher
	return set
}

func (r *Reader) addPolicy(c *evaluator.Cluster, p calicoPolicy) {
	if p.staged {
		c.Staged = append(c.Staged, p.policy)
	} else {
		c.Policies = append(c.Policies, p.policy)
	}
}
