# AssetsUp Webhooks. `make dev` runs the whole service locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
# The Temporal CLI takes minutes to build from source: keep one build per version
# outside the work tree so fresh clones (and CI on the same machine) reuse it.
TEMPORAL_CACHE ?= $(HOME)/.cache/assetsup-webhooks
TEMPORAL_CACHED := $(TEMPORAL_CACHE)/temporal-$(TEMPORAL_CLI_VERSION)
TEST_TIMEOUT ?= 30m
FUZZ_TIME ?= 15s

.PHONY: all build temporal temporal-server ts-deps dev prod-local test replay-corpus fuzz lint tidy-check bench clean

all: build

build:
	$(GO) build -o bin/webhooks ./cmd/webhooks
	$(GO) build -o bin/receiver ./cmd/receiver
	$(GO) build -o bin/prodlocal ./cmd/prodlocal

## temporal: the real Temporal CLI (dev server + Web UI), built from source in tools/.
temporal: bin/temporal

bin/temporal: tools/go.mod tools/go.sum
	@mkdir -p bin $(TEMPORAL_CACHE)
	@if [ ! -x "$(TEMPORAL_CACHED)" ]; then \
		echo "building the Temporal CLI $(TEMPORAL_CLI_VERSION) from source (a few minutes, once)"; \
		cd tools && $(GO) build -o "$(TEMPORAL_CACHED).tmp" github.com/temporalio/cli/cmd/temporal && \
		mv "$(TEMPORAL_CACHED).tmp" "$(TEMPORAL_CACHED)"; \
	fi
	cp "$(TEMPORAL_CACHED)" bin/temporal
	@touch bin/temporal

## temporal-server: the real Temporal server (go.temporal.io/server cmd/server), its SQL
## schema tool and a Web UI server (tools/temporal-ui), built from source in tools/ for
## `make prod-local`, the cluster tests and the production-stack benchmark. Cached
## like the CLI, keyed by the tools module's pins and the UI server's source.
TEMPORAL_SERVER_KEY := $(shell cat tools/go.sum tools/temporal-ui/main.go 2>/dev/null | sha256sum | cut -c1-12)
TEMPORAL_SERVER_CACHED := $(TEMPORAL_CACHE)/temporal-server-$(TEMPORAL_SERVER_KEY)
temporal-server: bin/temporal-server

bin/temporal-server: tools/go.mod tools/go.sum tools/temporal-ui/main.go
	@mkdir -p bin $(TEMPORAL_CACHE)
	@if [ ! -x "$(TEMPORAL_SERVER_CACHED)/temporal-server" ]; then \
		echo "building the Temporal server from source (a few minutes, once)"; \
		rm -rf "$(TEMPORAL_SERVER_CACHED).tmp" && mkdir -p "$(TEMPORAL_SERVER_CACHED).tmp" && \
		cd tools && $(GO) build -o "$(TEMPORAL_SERVER_CACHED).tmp/temporal-server" go.temporal.io/server/cmd/server && \
		$(GO) build -o "$(TEMPORAL_SERVER_CACHED).tmp/temporal-sql-tool" go.temporal.io/server/cmd/tools/sql && \
		$(GO) build -o "$(TEMPORAL_SERVER_CACHED).tmp/temporal-ui" ./temporal-ui && \
		rm -rf "$(TEMPORAL_SERVER_CACHED)" && mv "$(TEMPORAL_SERVER_CACHED).tmp" "$(TEMPORAL_SERVER_CACHED)"; \
	fi
	cp "$(TEMPORAL_SERVER_CACHED)/temporal-sql-tool" "$(TEMPORAL_SERVER_CACHED)/temporal-ui" bin/
	cp "$(TEMPORAL_SERVER_CACHED)/temporal-server" bin/temporal-server
	@touch bin/temporal-server

## ts-deps: the TypeScript client's packages, reinstalled when its lockfile changes.
ts-deps: clients/typescript/node_modules/.package-lock.json

clients/typescript/node_modules/.package-lock.json: clients/typescript/package-lock.json
	cd clients/typescript && npm ci --no-audit --no-fund

dev: build temporal
	scripts/dev.sh

## prod-local: the production topology of docker-compose.yml as processes on loopback:
## the real Temporal server on PostgreSQL, its Web UI, migrations, 2 API replicas behind
## a balancer and 3 worker replicas (scripts/prod-local.sh).
prod-local: build temporal temporal-server
	scripts/prod-local.sh

# The original of testdata/signatures.json, when it sits beside the checkout: the signing
# tests check that the copy has not drifted from it.
SHARED_SIGNATURE_VECTORS ?= $(abspath $(wildcard ../shared/vectors/signatures.json))
export SHARED_SIGNATURE_VECTORS

# The end-to-end suite runs twice: on the dev server (with everything else), and on the real
# server with PostgreSQL persistence (TEST_TEMPORAL_TARGET=server). e2e/cluster always runs
# the production topology on the real server.
test: build temporal temporal-server ts-deps
	scripts/ensure-postgres.sh
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	TEST_TEMPORAL_TARGET=server $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./e2e/
	cd bench && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd deploy && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## replay-corpus: record the workflow histories that workflows/replay_test.go replays
## (workflows/testdata/histories) again on the dev server; commit the result.
replay-corpus: temporal
	scripts/ensure-postgres.sh
	$(GO) test -count=1 -run '^TestReplayCorpus$$' ./e2e/ -args -update-histories

## fuzz: each fuzz target for FUZZ_TIME, seeded by the committed corpora.
fuzz:
	scripts/ensure-postgres.sh
	scripts/fuzz.sh $(FUZZ_TIME)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd deploy && $(GO) vet ./...
	$(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...

## tidy-check: each module's go.mod and go.sum list exactly what its code imports.
## (tools/ is left out: it only pins the Temporal CLI and is not tidy.)
tidy-check:
	$(GO) mod tidy -diff
	cd bench && $(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff

## bench: the delivery benchmark (bench/README.md), its own module; results go to
## bench/results. BENCH_TARGET=dev,prod and BENCH_REPLICAS=1,2,3 choose the stacks. Then
## the per-delivery costs of single steps, as Go benchmarks: payload encryption, a payload
## filter, a rate-limit reservation and an in-flight lease, the endpoint-health query, the
## portal's weight and time to interactive in Chromium.
BENCH_GO := ./payloadcodec/ ./filter/ ./models/ ./portal/
bench: build temporal temporal-server
	scripts/ensure-postgres.sh
	cd bench && $(GO) run .
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_GO)
	$(GO) test -run '^$$' -bench BenchmarkPortalInteractive ./e2e/

clean:
	rm -rf bin
