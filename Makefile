# Tributary — the two commands are `make run` and `make test`.
GO ?= go
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TRIBUTARY_TEST_DATABASE_URL ?= $(PG_TEST_URL)

.PHONY: run test bench bench-micro lint build fmt chaos

## run: start the engine on the embedded SQLite default (./data) with the sandbox app
run:
	$(GO) run ./cmd/tributary serve

## test: vet and run every test with the race detector, on SQLite and PostgreSQL
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m -v ./... | grep -Ev '^(=== (RUN|PAUSE|CONT|NAME))'

## bench: the benchmark harness on PostgreSQL (TRIBUTARY_TEST_DATABASE_URL): the whole path (`tributary serve`
## as its own process, native Shopify webhooks and the sandbox API, a receiver process), then component rows; one table
bench:
	$(GO) run ./cmd/tributary-bench --database-url "$(TRIBUTARY_TEST_DATABASE_URL)"

## bench-micro: the packages' Go micro-benchmarks (SQLite and PostgreSQL variants)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

build:
	$(GO) build -o bin/tributary ./cmd/tributary

## chaos: the long fault-injection runs (SIGKILLs, dropped PostgreSQL connections, faulty receiver and providers); prints each audit
chaos:
	TRIBUTARY_CHAOS=1 $(GO) test -count=1 -timeout 30m -v -run 'TestSIGKILL|TestPostgresConnectionsDropped|TestNativeWebhooks|TestHubSpotFaults|TestShopifyFaults|TestCrashMidPoll|TestWebhooksDeletedWhile|TestSlowTenantKeeps|TestTwoReplicasRecording' ./chaos/ ./cmd/tributary/ | grep -Ev '^(=== (RUN|PAUSE|CONT|NAME))'
