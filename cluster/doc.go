// Package cluster is calico-pni's access to the API server: it detects
// the Calico API (detect.go), lists what calico-pni reads (list.go,
// objects.go, status.go), runs the plans of package plan with its writer
// and executor (write.go, execute.go), and removes everything calico-pni
// wrote (cleanup.go, stop.go). Only this package and package controller,
// which drives it, talk to the API server.
package cluster
