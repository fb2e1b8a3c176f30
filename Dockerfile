# syntax=docker/dockerfile:1
# AssetsUp Webhooks: one static binary whose subcommand (migrate | api | worker | token |
# dispatch) picks the role. Build: docker build --build-arg VERSION=$(git describe) .
# deploy/compose_test.go checks this file (`cd deploy && go test ./...`, part of `make test`).

ARG GO_VERSION=1.26

# Build on the builder's own platform and cross-compile, so multi-arch builds
# (docker buildx build --platform linux/amd64,linux/arm64) need no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/webhooks ./cmd/webhooks

# No shell, no package manager: CA certificates, tzdata and /etc/passwd only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webhooks /webhooks
# 65532: the image's nonroot user; the process needs no privileges.
USER 65532:65532
# Listen on every interface inside the container (the service defaults to loopback).
ENV HTTP_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9090
# 8080: API (also /healthz, /readyz, /metrics); 9090: worker /metrics.
EXPOSE 8080 9090
# No HEALTHCHECK: the image has no shell or HTTP client. Orchestrators probe
# GET /healthz (liveness) and GET /readyz (readiness) on 8080 over HTTP.
ENTRYPOINT ["/webhooks"]
CMD ["api"]
