// Package controller is calico-pni's reconcile loop: informers fill
// caches, event handlers enqueue one key, and each pass reads the caches
// (or the API server while they are in doubt), generates the desired
// state (package policies), plans the writes (package plan) and runs the
// plan (package cluster). The leader runs it; every replica keeps the
// caches warm.
package controller
