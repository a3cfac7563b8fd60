// Package charttest tests what installs calico-pni: the Helm chart in
// charts/calico-pni (rendered with a real helm, applied to a real API
// server, its RBAC exercised by the real binary under the chart's
// identities) and the container image (the Dockerfile checked against the
// Makefile's build and the chart's manifests). It holds tests only.
package charttest
