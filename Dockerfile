# The calico-pni image: one static binary on distroless, running as the
# distroless nonroot user. Build for several platforms with
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 .
# `make image-check` builds the same binaries without a container engine
# and checks this file against the Makefile and the Helm chart.

# The builder runs on the build machine's platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/calico-pni ./cmd/calico-pni

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/calico-pni /calico-pni
USER 65532:65532
ENTRYPOINT ["/calico-pni"]
CMD ["run"]
