package replay

import (
	"context"
	"os"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// env is a real API server with Calico 3.28's v1 CRDs and the Tier CRD
// of Calico 3.29, keeping its audit log.
var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Run(m, testbed.Options{CalicoV1: true, CalicoTiers: true}, &env))
}

const writer = "replay-writer"

var (
	gnpGVR  = schema.GroupVersionResource{Group: groupCalicoV1, Version: "v1", Resource: "globalnetworkpolicies"}
	tierGVR = schema.GroupVersionResource{Group: groupCalicoV1, Version: "v1", Resource: "tiers"}
)

func gnpObject(name, tier string, spec map[string]any) *unstructured.Unstructured {
	if tier != "" {
		spec["tier"] = tier
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkPolicy",
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
}

// On the real API server: writes made in a known order come back from
// the wire in that order; replayed on the state listed before them, they
// rebuild the state the server holds after them; and Check finds the gap
// the order leaves (a namespace isolated before its project's allow).
func TestReplayTheWire(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	as := testbed.As(e.Config, writer)
	kube := kubernetes.NewForConfigOrDie(as)
	dyn := dynamic.NewForConfigOrDie(as)

	// Before the mark: the project's namespaces, the deny baseline, and
	// the API server's EndpointSlice.
	for _, ns := range []string{"rw-1", "rw-2"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace(ns, "c-1", "p-1", "calico-pni.io/project", "p-1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"Ingress", "Egress"} {
		baseline := gnpObject("default.pni-deny-"+dir, "", map[string]any{"order": 10000, "namespaceSelector": "calico-pni.io/isolated == 'true'", "types": []any{dir}})
		baseline.SetName("default.pni-deny-" + map[string]string{"Ingress": "ingress", "Egress": "egress"}[dir])
		if _, err := dyn.Resource(gnpGVR).Create(ctx, baseline, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	port, proto := int32(6443), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("https"), Port: &port, Protocol: &proto}},
	}
	if _, err := kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start, err := Capture(ctx, e.Dynamic)
	if err != nil {
		t.Fatal(err)
	}
	mark, err := e.Wire().Mark()
	if err != nil {
		t.Fatal(err)
	}

	// The writes, in a known order.
	isolate := []byte(`{"metadata":{"labels":{"calico-pni.io/isolated":"true"}}}`)
	steps := []struct {
		want string // verb and name as the replay orders it; "" when it commits nothing
		do   func() error
	}{
		{"patch rw-1", func() error {
			_, err := kube.CoreV1().Namespaces().Patch(ctx, "rw-1", types.MergePatchType, isolate, metav1.PatchOptions{})
			return err
		}},
		{"patch rw-2", func() error {
			_, err := kube.CoreV1().Namespaces().Patch(ctx, "rw-2", types.MergePatchType, isolate, metav1.PatchOptions{})
			return err
		}},
		{"create default.pni-project-p-1", func() error {
			_, err := dyn.Resource(gnpGVR).Create(ctx, gnpObject("default.pni-project-p-1", "", map[string]any{
				"order": 2000, "namespaceSelector": "calico-pni.io/isolated == 'true' && calico-pni.io/project == 'p-1'",
				"types":   []any{"Ingress", "Egress"},
				"ingress": []any{map[string]any{"action": "Allow", "source": map[string]any{"namespaceSelector": "calico-pni.io/project == 'p-1'"}}},
				"egress":  []any{map[string]any{"action": "Allow", "destination": map[string]any{"namespaceSelector": "calico-pni.io/project == 'p-1'"}}},
			}), metav1.CreateOptions{})
			return err
		}},
		{"", func() error { // the same patch again changes nothing
			_, err := kube.CoreV1().Namespaces().Patch(ctx, "rw-1", types.MergePatchType, isolate, metav1.PatchOptions{})
			return err
		}},
		{"", func() error { // refused: it exists
			_, err := dyn.Resource(gnpGVR).Create(ctx, gnpObject("default.pni-project-p-1", "", map[string]any{"order": 1}), metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				t.Errorf("creating a policy twice: %v", err)
			}
			return nil
		}},
		{"create tenant", func() error {
			np := &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: "rw-2"},
				Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
			}
			_, err := kube.NetworkingV1().NetworkPolicies("rw-2").Create(ctx, np, metav1.CreateOptions{})
			return err
		}},
		{"create walls", func() error {
			tier := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "crd.projectcalico.org/v1", "kind": "Tier",
				"metadata": map[string]any{"name": "walls"}, "spec": map[string]any{"order": 100, "defaultAction": "Pass"},
			}}
			_, err := dyn.Resource(tierGVR).Create(ctx, tier, metav1.CreateOptions{})
			return err
		}},
		{"create walls.pass-all", func() error {
			_, err := dyn.Resource(gnpGVR).Create(ctx, gnpObject("walls.pass-all", "walls", map[string]any{
				"order": 1, "selector": "all()", "types": []any{"Ingress"}, "ingress": []any{map[string]any{"action": "Pass"}},
			}), metav1.CreateOptions{})
			return err
		}},
		{"delete walls.pass-all", func() error {
			return dyn.Resource(gnpGVR).Delete(ctx, "walls.pass-all", metav1.DeleteOptions{})
		}},
		{"delete tenant", func() error {
			return kube.NetworkingV1().NetworkPolicies("rw-2").Delete(ctx, "tenant", metav1.DeleteOptions{})
		}},
		{"create rw-3", func() error {
			_, err := kube.CoreV1().Namespaces().Create(ctx, testbed.Namespace("rw-3", "c-1", "p-1"), metav1.CreateOptions{})
			return err
		}},
		{"delete rw-3", func() error { return kube.CoreV1().Namespaces().Delete(ctx, "rw-3", metav1.DeleteOptions{}) }},
		{"update rw-3", func() error { // the finalize, which removes it
			ns, err := kube.CoreV1().Namespaces().Get(ctx, "rw-3", metav1.GetOptions{})
			if err != nil {
				return err
			}
			ns.Spec.Finalizers = nil
			_, err = kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
			return err
		}},
	}
	var want []string
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.want, err)
		}
		if s.want != "" {
			want = append(want, s.want)
		}
	}
	t.Cleanup(func() {
		for _, ns := range []string{"rw-1", "rw-2", "rw-3"} {
			if err := e.DeleteNamespace(ctx, ns); err != nil {
				t.Error(err)
			}
		}
		for _, name := range []string{"default.pni-deny-ingress", "default.pni-deny-egress", "default.pni-project-p-1"} {
			if err := e.Dynamic.Resource(gnpGVR).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
		}
		if err := e.Dynamic.Resource(tierGVR).Delete(ctx, "walls", metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
		if err := e.Kube.DiscoveryV1().EndpointSlices("default").Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	})
	final, err := Capture(ctx, e.Dynamic)
	if err != nil {
		t.Fatal(err)
	}

	all, err := e.Wire().Writes(mark)
	if err != nil {
		t.Fatal(err)
	}
	var writes []testbed.Write
	for _, w := range all {
		if w.Writer == writer {
			writes = append(writes, w)
		}
	}
	commits, err := Order(writes)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(commits.Writes); !slices.Equal(got, want) {
		t.Errorf("the wire in commit order:\n got %v\nwant %v", got, want)
	}
	if commits.NoOps != 1 {
		t.Errorf("%d no-ops, want the repeated patch", commits.NoOps)
	}

	replayed := start.Clone()
	for _, w := range commits.Writes {
		if err := replayed.Apply(w); err != nil {
			t.Fatal(err)
		}
	}
	if d := Diff(replayed, final); len(d) > 0 {
		t.Errorf("the replay differs from what the server holds:\n%s", joinLines(d))
	}
	if d := Diff(start, final); len(d) == 0 {
		t.Error("the writes changed nothing the state holds")
	}

	probes, err := SyntheticProbes(start, final)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(start, writes, probes)
	if len(r.Errors) > 0 {
		t.Fatalf("%s", r)
	}
	found := false
	for _, g := range r.Gaps {
		if g.Write.Name == "rw-1" && g.Conn.Dst.Name == "rw-1/probe" && g.Conn.Src.Name == "rw-2/probe" {
			found = g.After == 0 && g.Want == Allowed && g.Got.Verdict == Denied
		}
	}
	if !found {
		t.Errorf("the replay does not find rw-2 cut off from rw-1 after rw-1 was isolated:\n%s", r)
	}
	t.Logf("%s", r)
}

func ptr[T any](v T) *T { return &v }

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}
