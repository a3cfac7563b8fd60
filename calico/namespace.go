package calico

// Namespace is a Kubernetes namespace as calico-pni reads it: its name,
// labels (which Calico copies onto every endpoint of the namespace as
// pcns. labels) and annotations (where Rancher keeps the guarded
// project). The generator (policies.Namespace) and the evaluator
// (evaluator.Namespace) read this one type, filled once by the reader of
// files (objects) or of the live cluster.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}
