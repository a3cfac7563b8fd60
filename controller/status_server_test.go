package controller_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/cluster"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/policies"
)

// NamespaceStatuses reads every namespace, across list pages (more
// namespaces than one page holds), and says which have a status, which
// have none and which have one it cannot read.
func TestNamespaceStatuses(t *testing.T) {
	e := fixtureEnv(t)
	ctx := context.Background()
	const n = 520 // more than one page of 500
	written := policies.Status{State: policies.Isolated, Isolated: true, Project: "p-b6jcw", Reason: "in project p-b6jcw", Policies: []string{"pni-deny-ingress"}}
	name := func(i int) string { return fmt.Sprintf("status-page-%03d", i) }
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			ns := testbed.Namespace(name(i), clusterID, "p-b6jcw")
			switch i % 3 {
			case 0:
				ns.Annotations[policies.StatusAnnotation] = written.Encode()
			case 1:
				ns.Annotations[policies.StatusAnnotation] = "{not json"
			}
			_, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			return err
		})
	}
	t.Cleanup(func() {
		var g errgroup.Group
		g.SetLimit(16)
		for i := range n {
			g.Go(func() error { return e.DeleteNamespace(context.Background(), name(i)) })
		}
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	got, err := cluster.NamespaceStatuses(ctx, e.Kube)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(got, func(a, b cluster.NamespaceStatus) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("not sorted by name")
	}
	seen := 0
	for _, s := range got {
		var i int
		if _, err := fmt.Sscanf(s.Name, "status-page-%03d", &i); err != nil {
			continue
		}
		seen++
		switch i % 3 {
		case 0:
			if s.Missing || s.Err != nil || !reflect.DeepEqual(s.Status, written) {
				t.Errorf("%s: %+v, want the status written", s.Name, s)
			}
		case 1:
			if s.Missing || s.Err == nil || !strings.Contains(s.Err.Error(), "namespace "+s.Name) {
				t.Errorf("%s: %+v, want an error naming the namespace", s.Name, s)
			}
		default:
			if !s.Missing || s.Err != nil {
				t.Errorf("%s: %+v, want missing", s.Name, s)
			}
		}
	}
	if seen != n {
		t.Errorf("read %d of the %d namespaces", seen, n)
	}
}
