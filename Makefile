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

.PHONY: all build temporal ts-deps dev test replay-corpus fuzz lint tidy-check bench clean

all: build

build:
	$(GO) build -o bin/webhooks ./cmd/webhooks
	$(GO) build -o bin/receiver ./cmd/receiver

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

## ts-deps: the TypeScript client's packages, reinstalled when its lockfile changes.
ts-deps: clients/typescript/node_modules/.package-lock.json

clients/typescript/node_modules/.package-lock.json: clients/typescript/package-lock.json
	cd clients/typescript && npm ci --no-audit --no-fund

dev: build temporal
	scripts/dev.sh

# The original of testdata/signatures.json, when it sits beside the checkout: the signing
# tests check that the copy has not drifted from it.
SHARED_SIGNATURE_VECTORS ?= $(abspath $(wildcard ../shared/vectors/signatures.json))
export SHARED_SIGNATURE_VECTORS

test: build temporal ts-deps
	scripts/ensure-postgres.sh
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
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

## bench: the delivery benchmark (bench/README.md), its own module; results go to bench/results.
bench: build temporal
	scripts/ensure-postgres.sh
	cd bench && $(GO) run .

clean:
	rm -rf bin
