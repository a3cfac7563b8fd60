package promotions_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
	"github.com/calico-pni/calico-pni/promotions"
)

var env *testbed.Env

func TestMain(m *testing.M) {
	os.Exit(testbed.Run(m, testbed.Options{}, &env))
}

var at = time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)

// The record is made on the first promotion, keeps every project added,
// reads back what was written, and is deleted by cleanup.
func TestRecordRoundTrip(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	r := promotions.Record{Kube: e.Kube, Namespace: "default", Name: "round-trip"}

	got, err := r.Load(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("a record that does not exist: %v, %v; want none and no error", got, err)
	}
	shop := promotions.Promotion{Project: "p-shop1", At: at, QuietSince: at.Add(-7 * 24 * time.Hour), QuietFor: "168h", Evidence: "flow evidence from goldmane since ..."}
	data := promotions.Promotion{Project: "p-data1", At: at.Add(time.Hour), QuietSince: at.Add(-30 * time.Hour), QuietFor: "24h", Accepted: 2}
	if err := r.Add(ctx, shop); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(ctx, data); err != nil {
		t.Fatal(err)
	}
	got, err = r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["p-shop1"].At.Equal(shop.At) || got["p-shop1"].QuietFor != "168h" || got["p-data1"].Accepted != 2 || got["p-data1"].Project != "p-data1" {
		t.Errorf("read back %+v", got)
	}
	cm, err := e.Kube.CoreV1().ConfigMaps("default").Get(ctx, "round-trip", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[calico.ManagedByLabel] != calico.ManagedByValue || cm.Labels[promotions.ComponentLabel] != promotions.ComponentValue {
		t.Errorf("labels %v", cm.Labels)
	}
	if want := "promoted at 2026-03-09T10:00:00Z after 7 days without an unexpected pending deny"; !strings.Contains(got["p-shop1"].Reason(), want) {
		t.Errorf("reason %q, want %q", got["p-shop1"].Reason(), want)
	}

	if err := r.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kube.CoreV1().ConfigMaps("default").Get(ctx, "round-trip", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete: %v", err)
	}
	if err := r.Delete(ctx); err != nil {
		t.Errorf("deleting a record that is gone: %v", err)
	}
}

// A ConfigMap of that name without calico-pni's label is neither read nor
// changed nor deleted; a key calico-pni cannot read is an error that
// names it, so that the daemon never demotes what it cannot read.
func TestRecordRefusesWhatItDidNotWrite(t *testing.T) {
	e := testbed.Need(t, env)
	ctx := context.Background()
	cms := e.Kube.CoreV1().ConfigMaps("default")
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "foreign"}, Data: map[string]string{"p-shop1": "mine"}}
	if _, err := cms.Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(ctx, "foreign", metav1.DeleteOptions{}) })
	r := promotions.Record{Kube: e.Kube, Namespace: "default", Name: "foreign"}
	if _, err := r.Load(ctx); err == nil || !strings.Contains(err.Error(), "without the label app.kubernetes.io/managed-by=calico-pni") {
		t.Errorf("Load: %v", err)
	}
	if err := r.Add(ctx, promotions.Promotion{Project: "p-x", At: at}); err == nil || !strings.Contains(err.Error(), "--promotions-configmap") {
		t.Errorf("Add: %v", err)
	}
	if err := r.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := cms.Get(ctx, "foreign", metav1.GetOptions{})
	if err != nil || cm.Data["p-shop1"] != "mine" || len(cm.Data) != 1 {
		t.Errorf("the foreign ConfigMap was changed: %+v, %v", cm, err)
	}

	broken := promotions.Record{Kube: e.Kube, Namespace: "default", Name: "broken"}
	if err := broken.Add(ctx, promotions.Promotion{Project: "p-shop1", At: at}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broken.Delete(ctx) })
	cm, err = cms.Get(ctx, "broken", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["p-data1"] = "{not json"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := broken.Load(ctx); err == nil || !strings.Contains(err.Error(), "key p-data1") || !strings.Contains(err.Error(), "remove the key") {
		t.Errorf("Load of a damaged record: %v", err)
	}
}
