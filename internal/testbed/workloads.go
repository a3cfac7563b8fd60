package testbed

import (
	"context"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// workloadResources are the kinds LoadWorkloads creates besides those
// LoadCluster knows, by apiVersion and kind.
var workloadResources = map[string]schema.GroupVersionResource{
	"v1 ServiceAccount":                            {Version: "v1", Resource: "serviceaccounts"},
	"networking.k8s.io/v1 NetworkPolicy":           {Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
	"crd.projectcalico.org/v1 NetworkPolicy":       {Group: "crd.projectcalico.org", Version: "v1", Resource: "networkpolicies"},
	"crd.projectcalico.org/v1 GlobalNetworkPolicy": {Group: "crd.projectcalico.org", Version: "v1", Resource: "globalnetworkpolicies"},
	"crd.projectcalico.org/v1 FelixConfiguration":  {Group: "crd.projectcalico.org", Version: "v1", Resource: "felixconfigurations"},
}

// LoadWorkloads creates the objects of a workloads file
// (testdata/article-workloads.yaml) as a running cluster holds them:
// pods with the status a kubelet would report (their addresses),
// service accounts, Services and EndpointSlices, and the users' own
// policies, Kubernetes and Calico (crd.projectcalico.org/v1). Service
// accounts a namespace already has are left as they are.
func (e *Env) LoadWorkloads(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	objects, err := DecodeObjects(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, u := range objects {
		if err := e.createWorkload(ctx, u); err != nil {
			return fmt.Errorf("%s: %s %s/%s: %w", path, u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	return nil
}

func (e *Env) createWorkload(ctx context.Context, u *unstructured.Unstructured) error {
	if u.GetAPIVersion() == "v1" && u.GetKind() == "Pod" {
		status := u.Object["status"]
		created, err := e.Dynamic.Resource(podsGVR).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		if err != nil || status == nil {
			return err
		}
		created.Object["status"] = status
		_, err = e.Dynamic.Resource(podsGVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	}
	gvr, ok := workloadResources[u.GetAPIVersion()+" "+u.GetKind()]
	if !ok {
		return e.create(ctx, u)
	}
	res := e.Dynamic.Resource(gvr)
	var err error
	if ns := u.GetNamespace(); ns != "" {
		_, err = res.Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
	} else {
		_, err = res.Create(ctx, u, metav1.CreateOptions{})
	}
	if apierrors.IsAlreadyExists(err) && u.GetKind() == "ServiceAccount" {
		return nil
	}
	return err
}
