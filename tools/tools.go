//go:build tools

// Package tools pins the test binaries built from this module: etcd is built
// straight from go.etcd.io/etcd/server/v3, whose root is a main package, and
// gotestsum, which prints the test counts at the end of `make test`.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "gotest.tools/gotestsum"
)
