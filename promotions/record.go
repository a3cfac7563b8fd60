package promotions

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/calico-pni/calico-pni/calico"
)

// ComponentLabel marks the record among calico-pni's objects.
const (
	ComponentLabel = "app.kubernetes.io/component"
	ComponentValue = "promotions"
)

// DefaultName is the record's name when the daemon is not told another
// (the chart names it after the release: <release>-promotions).
const DefaultName = "calico-pni-promotions"

// Record is the ConfigMap that holds the promotions.
type Record struct {
	Kube            kubernetes.Interface
	Namespace, Name string
}

func (r Record) String() string { return "ConfigMap " + r.Namespace + "/" + r.Name }

// Load returns the promotions by project. A record that does not exist
// holds none. A key that is no project ID, or a value that is not a
// promotion, is an error naming both and the fix: a record half
// understood must not demote the projects it no longer shows.
func (r Record) Load(ctx context.Context) (map[string]Promotion, error) {
	cm, err := r.Kube.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]Promotion{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of promoted projects (%s): %w", r, err)
	}
	if err := owned(cm); err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	out := make(map[string]Promotion, len(cm.Data))
	for project, value := range cm.Data {
		if msgs := validation.IsDNS1123Label(project); len(msgs) > 0 {
			return nil, fmt.Errorf("%s: key %q is not a project ID such as p-b6jcw; remove it (kubectl -n %s edit configmap %s)", r, project, r.Namespace, r.Name)
		}
		p, err := decode(project, value)
		if err != nil {
			return nil, fmt.Errorf("%s: key %s does not hold a promotion calico-pni wrote (%v); remove the key to stage the project again, or put back what calico-pni wrote", r, project, err)
		}
		out[project] = p
	}
	return out, nil
}

// Add records promotions, creating the record if needed. A ConfigMap of
// that name that calico-pni did not make is left alone and reported.
func (r Record) Add(ctx context.Context, ps ...Promotion) error {
	data := map[string]string{}
	for _, p := range ps {
		value, err := p.encode()
		if err != nil {
			return fmt.Errorf("recording the promotion of %s: %w", p.Project, err)
		}
		data[p.Project] = value
	}
	cms := r.Kube.CoreV1().ConfigMaps(r.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, r.new(data), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Made meanwhile: a conflict, so that the update is tried.
				return apierrors.NewConflict(corev1.Resource("configmaps"), r.Name, err)
			}
			return r.wrap(err)
		}
		if err != nil {
			return r.wrap(err)
		}
		if err := owned(cm); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for k, v := range data {
			cm.Data[k] = v
		}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return r.wrap(err)
	})
}

func (r Record) new(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: r.Name, Namespace: r.Namespace,
			Labels: map[string]string{calico.ManagedByLabel: calico.ManagedByValue, ComponentLabel: ComponentValue},
			Annotations: map[string]string{
				"calico-pni.io/description": "Staged projects calico-pni's promotion gate enforced (projects.promote.automatic), by project ID. Remove a key to stage that project again.",
			},
		},
		Data: data,
	}
}

func (r Record) wrap(err error) error {
	if err == nil || apierrors.IsConflict(err) {
		return err
	}
	return fmt.Errorf("writing the record of promoted projects (%s): %w", r, err)
}

// Delete removes the record, if calico-pni made it (cleanup).
func (r Record) Delete(ctx context.Context) error {
	cm, err := r.Kube.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", r, err)
	}
	if owned(cm) != nil {
		return nil
	}
	err = r.Kube.CoreV1().ConfigMaps(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", r, err)
	}
	return nil
}

func owned(cm *corev1.ConfigMap) error {
	if cm.Labels[calico.ManagedByLabel] != calico.ManagedByValue {
		return fmt.Errorf("exists without the label %s=%s, so calico-pni neither reads nor changes it: delete it, or give the daemon another name (--promotions-configmap)", calico.ManagedByLabel, calico.ManagedByValue)
	}
	return nil
}

// Projects returns the promoted projects, sorted.
func Projects(ps map[string]Promotion) []string {
	out := make([]string, 0, len(ps))
	for p := range ps {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Reasons returns each project's Reason, for policies.Snapshot.Promoted.
func Reasons(ps map[string]Promotion) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]string, len(ps))
	for project, p := range ps {
		out[project] = p.Reason()
	}
	return out
}
