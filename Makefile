# calico-pni: build, test and demo.
#
#   make test   everything CI runs: format check, vet, and all tests with the
#               race detector against a real kube-apiserver and etcd, the
#               Helm chart and the container image included
#   make demo   run the daemon against a local API server and show its work
#               (Calico 3.30, calico-pni's own tier; make demo-default-tier:
#               Calico 3.28, the default tier, as in the article)
#   make release-check
#               rehearse the release: goreleaser check, a snapshot build of
#               every binary and archive (nothing published), actionlint on
#               the workflows, and the Krew manifest installed with Krew
#   make image-check
#               build the image's binaries (linux/amd64, linux/arm64) as the
#               Dockerfile does, and check them, the Dockerfile and the chart
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

# helm, for the chart's tests: built from its Go module.
HELM_VERSION := v3.22.0

# Release tools, built from their Go modules like helm. The version is part
# of each file name, so that a new version is built beside the old one and
# several checkouts can share bin/ (docs/releasing.md).
GORELEASER_VERSION := v2.15.1
ACTIONLINT_VERSION := v1.7.12
KREW_VERSION := v0.4.3
GORELEASER := $(BIN)/goreleaser-$(GORELEASER_VERSION)
ACTIONLINT := $(BIN)/actionlint-$(ACTIONLINT_VERSION)
KREW := $(BIN)/krew-$(KREW_VERSION)
KREW_VALIDATE := $(BIN)/validate-krew-manifest-$(KREW_VERSION)

# The protobuf generators of `make proto`, from the Go modules of the
# protobuf and gRPC runtimes calico-pni links (go.mod).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.1
PROTOC_GEN_GO := $(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)

# The platforms of the container image (Dockerfile).
IMAGE_ARCHES := amd64 arm64

# Calico's v1 CRDs come from this version of github.com/projectcalico/calico
# (Calico 3.28): test data only, never imported into the product.
CALICO_MODULE := github.com/projectcalico/calico@v1.11.0-cni-plugin.0.20250813170300-a0db560f0520

GO_DIRS := calico cluster cmd config controller evaluator exposures flows internal lease metrics objects plan policies rancher report tools

export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: all build browser test test-short vet fmt-check tools crds demo demo-default-tier clean image-binaries image-check helm release-tools release-check release-binaries proto

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/calico-pni ./cmd/calico-pni

$(BIN)/kube-apiserver: tools/go.mod tools/cmd/kube-apiserver/main.go
	cd tools && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/kube-apiserver ./cmd/kube-apiserver

$(BIN)/etcd: tools/go.mod
	cd tools && $(GO) build -o $(BIN)/etcd go.etcd.io/etcd/server/v3

$(BIN)/gotestsum: tools/go.mod
	cd tools && $(GO) build -o $(BIN)/gotestsum gotest.tools/gotestsum

# Rebuilt when the Makefile changes, so that a new HELM_VERSION takes effect.
$(BIN)/helm: Makefile
	GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

tools: $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/gotestsum $(BIN)/helm

# helm alone, for the release workflow's chart job.
helm: $(BIN)/helm

# go install names a binary after its package; each is installed into a
# directory of its own, then renamed with its version.
$(GORELEASER):
	GOBIN=$@.d $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
	mv $@.d/goreleaser $@ && rmdir $@.d

$(ACTIONLINT):
	GOBIN=$@.d $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	mv $@.d/actionlint $@ && rmdir $@.d

$(KREW) $(KREW_VALIDATE) &:
	GOBIN=$(KREW).d $(GO) install sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION) sigs.k8s.io/krew/cmd/validate-krew-manifest@$(KREW_VERSION)
	mv $(KREW).d/krew $(KREW) && mv $(KREW).d/validate-krew-manifest $(KREW_VALIDATE) && rmdir $(KREW).d

release-tools: $(GORELEASER) $(ACTIONLINT) $(KREW) $(KREW_VALIDATE)

$(PROTOC_GEN_GO):
	GOBIN=$@.d $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	mv $@.d/protoc-gen-go $@ && rmdir $@.d

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$@.d $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	mv $@.d/protoc-gen-go-grpc $@ && rmdir $@.d

# The Go code of calico-pni's definition of Goldmane's API
# (flows/goldmanepb), regenerated from its .proto. The generated files are
# committed, so that building and testing need no protoc; protoc is
# Debian's protobuf-compiler, installed when missing.
proto: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	command -v protoc >/dev/null || { apt-get update && apt-get install -y protobuf-compiler; }
	protoc --proto_path=. \
	  --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --go_out=. --go_opt=paths=source_relative \
	  --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	  flows/goldmanepb/goldmane.proto

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

# The image's binaries, built exactly as the Dockerfile builds them (same
# flags, CGO off, one per platform); bin/image/VERSION records the version.
image-binaries:
	for arch in $(IMAGE_ARCHES); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/image/$$arch/calico-pni ./cmd/calico-pni || exit 1; \
	done
	echo '$(VERSION)' > $(BIN)/image/VERSION

# There is no container engine here: check the Dockerfile against this
# Makefile, the binaries against the Dockerfile, and the chart against what
# the binaries accept and serve.
image-check: tools crds image-binaries
	$(GO) test -count=1 -run '^(TestDockerfile|TestDockerignore|TestImage)' ./internal/charttest/

# Debian's Chromium, in which the HTML matrix is tested headless
# (cmd/calico-pni/matrix_browser_test.go); installed with apt-get when
# /usr/bin/chromium is missing.
browser:
	@test -x /usr/bin/chromium || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium; }

# The chart's tests run bin/calico-pni, bin/helm and the image's binaries;
# `make image-check`'s tests run here with the rest.
test: tools crds browser fmt-check vet build image-binaries
	$(BIN)/gotestsum --format testname -- -race -count=1 ./...

# Unit tests only: skips the real-server tests.
test-short: fmt-check vet
	$(GO) test -short ./...

# The release rehearsed, as far as it can be without the repository host:
# the workflows linted, the GoReleaser configuration checked, the chart's
# version checked as the next release's, every binary and archive built as
# a snapshot of that version (nothing signed or published; only the Go
# module proxy is used), and hack/release's tests run on the result
# (the archives against the Krew manifest, installed with Krew).
release-check: release-tools
	$(ACTIONLINT)
	$(GORELEASER) check
	$(GO) run ./hack/release check-version --next
	version=$$($(GO) run ./hack/release check-version --next | sed -n 's/^version=//p'); \
	  commit=$$(git rev-parse --short HEAD 2>/dev/null || echo none); \
	  GORELEASER_CURRENT_TAG=v$$version CALICO_PNI_SNAPSHOT_VERSION=$$version-snapshot.$$commit \
	  $(GORELEASER) release --snapshot --clean --skip=sign
	KREW=$(KREW) KREW_VALIDATE=$(KREW_VALIDATE) $(GO) test -tags release -count=1 ./hack/release/

# The release workflow's GoReleaser step: publishes a draft release of the
# tag at HEAD (needs GITHUB_TOKEN, and cosign for the checksums' signature).
release-binaries: $(GORELEASER)
	test -n "$(RELEASE_NOTES)" || { echo "give RELEASE_NOTES=<file>"; exit 1; }
	$(GORELEASER) release --clean --release-notes "$(RELEASE_NOTES)"

# The demo stands for Calico 3.30, whose tiers hold calico-pni's walls;
# demo-default-tier for the article's Calico 3.28, without tiers.
demo: tools crds build
	$(GO) run ./hack/demo

demo-default-tier: tools crds build
	$(GO) run ./hack/demo --default-tier

clean:
	rm -rf $(BIN)
