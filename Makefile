# goat-gateway. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
LISTEN ?= localhost:8080
TRIALS ?= 20
FUZZTIME ?= 3s
DATA_DIR ?= ./data
# The gateway's module and the Go SDK's (sdk/go is its own module; go.work
# joins them for development, so one command covers both).
GOPKGS := ./... ./sdk/go/...

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
# go build stamps the commit itself, except in a git worktree checkout or
# under GOFLAGS=-buildvcs=false: the commit is also given at link time.
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)

build: ## build bin/goat-gateway
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o bin/goat-gateway ./cmd/goat-gateway

.PHONY: run
run: build ## start a dev gateway on localhost:8080 (data in ./data); prints its URL and a token
	./bin/goat-gateway serve --listen $(LISTEN) --data-dir $(DATA_DIR) --dev --print-token dev

.PHONY: setup
setup: ## install what the tests need when it is missing (apt-get: nginx, curl, docker-compose, chromium; npm ci)
	tools/setup-test.sh

# `go test ./...` runs every Fuzz target on its seed corpus (f.Add and
# testdata/fuzz) as a unit test; `make fuzz` fuzzes them for FUZZTIME each.
.PHONY: test
# The vectors and the TS SDK's tests run beside the Go tests: these keep
# the 2 cores about 90% busy and the TS suite about 80% of one, mostly
# waiting on its gateway and Chromium, so side by side saves 1.5-2 of the
# 8-9 minutes. Their output is kept and printed after the Go tests'.
# GOAT_TEST_IO_URING=required: the tests of the io_uring paths fail, not
# skip, where the kernel refuses io_uring (the machines make test is for
# have it; a plain `go test` elsewhere skips them).
TS_LOG := .test-ts.log
test: setup lint check-generated check-compose ## everything CI runs, on a fresh machine too: setup, lint, generated code, race tests (fuzz seeds included), vectors, TS SDK, cluster
	@echo "vectors and TS SDK tests (node tools/vectors/verify-commits.mjs; node merge/testdata/verify-merge.mjs; npm test --prefix sdk/ts) run beside the Go tests; their output follows"
	@( node tools/vectors/verify-commits.mjs && node merge/testdata/verify-merge.mjs && npm test --prefix sdk/ts ) > $(TS_LOG) 2>&1 & ts=$$!; \
	trap 'kill $$ts 2>/dev/null' INT TERM; \
	echo "GOAT_TEST_IO_URING=required $(GO) test -race $(GOPKGS)"; GOAT_TEST_IO_URING=required $(GO) test -race $(GOPKGS); gorc=$$?; \
	wait $$ts; tsrc=$$?; \
	echo "--- vectors and TS SDK tests:"; cat $(TS_LOG); rm -f $(TS_LOG); \
	if [ $$gorc -ne 0 ] || [ $$tsrc -ne 0 ]; then echo "go test: exit $$gorc; vectors and TS SDK tests: exit $$tsrc"; exit 1; fi
	$(MAKE) test-cluster

.PHONY: test-cluster
test-cluster: ## multi-process cluster test: nats-server, nginx and three gateways on loopback
	$(GO) test -tags cluster -count=1 -v ./tests/cluster/

.PHONY: check-compose
check-compose: ## validate docker-compose.yml (Debian's docker-compose; no engine needed)
	docker-compose -f docker-compose.yml config -q

.PHONY: crash-test
crash-test: build ## SIGKILL the real binary TRIALS times under writes (TRIALS=200 for the full run); nothing acknowledged may be lost
	$(GO) run ./cmd/goat-crashtest --bin bin/goat-gateway --trials $(TRIALS)

.PHONY: soak
soak: build ## attack-mix soak of bin/goat-gateway on loopback, attackers in their own niced process (under 3 min; SOAK_FLAGS="--baseline 5m --attack 30m" for longer); results in bench/results/soak.{json,txt}
	$(GO) run ./cmd/goat-soak --bin bin/goat-gateway --out bench/results/soak $(SOAK_FLAGS)

.PHONY: fuzz
fuzz: ## fuzz every Fuzz target for FUZZTIME each (default 3s; make test runs only their seeds)
	FUZZTIME=$(FUZZTIME) GO=$(GO) reliability/fuzz.sh

SDKTS_DEPS := sdk/ts/node_modules/.package-lock.json
$(SDKTS_DEPS): sdk/ts/package-lock.json
	npm ci --prefix sdk/ts --no-audit --no-fund
	@touch $@

.PHONY: generate
generate: $(SDKTS_DEPS) ## regenerate generated code (gen/, TypeScript types)
	$(GO) generate ./...
	npm run gen --prefix sdk/ts

.PHONY: demo
demo: $(SDKTS_DEPS) ## the React todo app served by one dev gateway (serve --static): http://127.0.0.1:8081/?list=groceries
	npm run demo --prefix sdk/ts

.PHONY: check-generated
check-generated: generate ## fail when generated code is stale
	@if [ -n "$$(git status --porcelain -- gen sdk/ts/src/gen)" ]; then \
		git status --porcelain -- gen sdk/ts/src/gen; git diff --stat -- gen sdk/ts/src/gen; \
		echo "generated code is stale: run 'make generate' and commit the result"; exit 1; fi

REDOCLY := tools/openapi-lint/node_modules/.bin/redocly

$(REDOCLY): tools/openapi-lint/package-lock.json
	npm ci --prefix tools/openapi-lint --no-audit --no-fund
	@touch $@

.PHONY: lint
lint: $(REDOCLY) ## gofmt, go vet, staticcheck, OpenAPI lint
	$(REDOCLY) lint --config tools/openapi-lint/redocly.yaml openapi.yaml
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOPKGS)
	$(GO) vet -tags cluster ./tests/cluster/
	$(GO) tool staticcheck $(GOPKGS)
	$(GO) tool staticcheck -tags cluster ./tests/cluster/

.PHONY: bench
bench: ## Go micro-benchmarks + the load scenarios + PouchDB and Centrifugo side by side; results in bench/results/ (about 13 min, 25 on a busy machine)
	bench/run.sh

.PHONY: bench-quick
bench-quick: ## every benchmark scenario at a small size, peer included (under 2 min); results in bench/results/quick/
	bench/run.sh --quick

.PHONY: clean
clean: ## remove build output
	rm -rf bin sdk/ts/dist sdk/ts/.demo-data
