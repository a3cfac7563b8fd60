# calico-pni: build, test and demo.
#
#   make test   everything CI runs: format check, vet, and all tests with the
#               race detector against a real kube-apiserver and etcd
#   make demo   run the daemon against a local API server and show its work
#
# Nothing here needs more than Go and the Go module proxy: the API server,
# etcd, helm and gotestsum are built from Go modules into bin/ on first use.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# The Kubernetes version of the test API server: k8s.io/kubernetes in tools/go.mod.
KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37

# Calico's v1 CRDs come from this version of github.com/projectcalico/calico
# (Calico 3.28): test data only, never imported into the product.
CALICO_MODULE := github.com/projectcalico/calico@v1.11.0-cni-plugin.0.20250813170300-a0db560f0520

GO_DIRS := calico cmd config internal policies rancher sync tools

export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: all build test test-short vet fmt-check tools crds demo clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/calico-pni ./cmd/calico-pni

$(BIN)/kube-apiserver: tools/go.mod tools/cmd/kube-apiserver/main.go
	cd tools && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/kube-apiserver ./cmd/kube-apiserver

$(BIN)/etcd: tools/go.mod
	cd tools && $(GO) build -o $(BIN)/etcd go.etcd.io/etcd/server/v3

$(BIN)/gotestsum: tools/go.mod
	cd tools && $(GO) build -o $(BIN)/gotestsum gotest.tools/gotestsum

tools: $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/gotestsum

$(BIN)/crds/.done: Makefile
	rm -rf $(BIN)/crds && mkdir -p $(BIN)/crds
	dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json $(CALICO_MODULE) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir" || { echo "could not download $(CALICO_MODULE)"; exit 1; }; \
	  cp "$$dir"/libcalico-go/config/crd/crd.projectcalico.org_*.yaml $(BIN)/crds/ && chmod u+w $(BIN)/crds/*.yaml
	touch $@

crds: $(BIN)/crds/.done

fmt-check:
	@out=$$(gofmt -l $(GO_DIRS)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd tools && $(GO) vet ./...

test: tools crds fmt-check vet
	$(BIN)/gotestsum --format testname -- -race -count=1 ./...

# Unit tests only: skips the real-server tests.
test-short: fmt-check vet
	$(GO) test -short ./...

demo: tools crds build
	$(GO) run ./internal/demo

clean:
	rm -rf $(BIN)
