package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var (
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	nodesGVR      = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	slicesGVR     = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	servicesGVR   = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// LoadCluster creates the Namespaces, Nodes (with their status), Services,
// Pods and EndpointSlices of a cluster file, as a real cluster would hold
// them.
// Namespaces the API server made itself (default, kube-system) get the
// file's labels and annotations.
func (e *Env) LoadCluster(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	objects, err := DecodeObjects(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, u := range objects {
		if err := e.create(ctx, u); err != nil {
			return fmt.Errorf("%s: %s %s: %w", path, u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

func (e *Env) create(ctx context.Context, u *unstructured.Unstructured) error {
	switch u.GetKind() {
	case "Namespace":
		_, err := e.Dynamic.Resource(namespacesGVR).Create(ctx, u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			live, err := e.Dynamic.Resource(namespacesGVR).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			live.SetLabels(merge(live.GetLabels(), u.GetLabels()))
			live.SetAnnotations(merge(live.GetAnnotations(), u.GetAnnotations()))
			_, err = e.Dynamic.Resource(namespacesGVR).Update(ctx, live, metav1.UpdateOptions{})
			return err
		}
		return err
	case "Node":
		status := u.Object["status"]
		created, err := e.Dynamic.Resource(nodesGVR).Create(ctx, u, metav1.CreateOptions{})
		if err != nil || status == nil {
			return err
		}
		created.Object["status"] = status
		_, err = e.Dynamic.Resource(nodesGVR).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	case "EndpointSlice":
		_, err := e.Dynamic.Resource(slicesGVR).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		return err
	case "Service":
		_, err := e.Dynamic.Resource(servicesGVR).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		return err
	case "Pod":
		_, err := e.Dynamic.Resource(podsGVR).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		return err
	}
	return fmt.Errorf("the test bed loads Namespaces, Nodes, Services, Pods and EndpointSlices only")
}

// SetCalicoVersion writes ClusterInformation "default" with the version,
// in each Calico API the options install.
func (e *Env) SetCalicoVersion(ctx context.Context, opts Options) error {
	for _, gv := range []struct {
		on bool
		gv schema.GroupVersion
	}{{opts.CalicoV1, schema.GroupVersion{Group: "crd.projectcalico.org", Version: "v1"}}, {opts.CalicoV3, schema.GroupVersion{Group: "projectcalico.org", Version: "v3"}}} {
		if !gv.on {
			continue
		}
		ci := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gv.gv.String(),
			"kind":       "ClusterInformation",
			"metadata":   map[string]any{"name": "default"},
			"spec":       map[string]any{"calicoVersion": opts.CalicoVersion, "datastoreReady": true},
		}}
		res := e.Dynamic.Resource(gv.gv.WithResource("clusterinformations"))
		if _, err := res.Create(ctx, ci, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating ClusterInformation in %s: %w", gv.gv, err)
		}
	}
	return nil
}

// DecodeObjects reads Kubernetes objects from YAML or JSON documents,
// expanding Lists.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if strings.HasSuffix(u.GetKind(), "List") {
			err := u.EachListItem(func(item runtime.Object) error {
				out = append(out, item.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, u)
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
