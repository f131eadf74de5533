# tern — make targets. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHPKGS ?= ./pipeline/... ./decoders/... ./encoders/...
THROUGHPUT ?= -n 1000000 -runs 5

.PHONY: help build run test test-short check fmt fmt-check vet bench benchcmp throughput fuzz e2e faults clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/tern
	$(GO) build -o bin/tern ./cmd/tern

run: ## run the demo pipeline in plugins.toml (Ctrl-C to stop)
	$(GO) run ./cmd/tern run -config plugins.toml

test: ## the full suite with the race detector (what CI runs)
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -tags purego ./internal/jsonx # the portable scanners, which amd64 skips
	$(GO) run ./cmd/tern test -config plugins.toml plugins_test.toml

test-short: ## quick tests, skipping integration tests
	$(GO) test -short -count=1 $(PKGS)

check: build ## validate plugins.toml
	./bin/tern check -config plugins.toml

fmt: ## format the code
	gofmt -w -s .

fmt-check: ## fail if gofmt would change anything
	@out=$$(gofmt -l -s .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet and staticcheck (its version is pinned in go.mod's tool line)
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

bench: ## Go benchmarks of the hot paths into bench/new.txt
	@mkdir -p bench
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 $(BENCHPKGS) | tee bench/new.txt

benchcmp: ## compare bench/old.txt with bench/new.txt
	$(GO) run golang.org/x/perf/cmd/benchstat@latest bench/old.txt bench/new.txt

throughput: ## W1-W3 over TCP, tern against the plain-Go reference, medians and ratios (bench/README.md; flags in THROUGHPUT)
	$(GO) build -o bin/tern ./cmd/tern
	$(GO) build -o bin/ternbench ./cmd/ternbench
	./bin/ternbench suite -tern bin/tern $(THROUGHPUT)

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

e2e: ## end-to-end tests of the tern binary
	$(GO) test -count=1 -run 'E2E' ./cmd/...

faults: ## the fault suite at full scale (R3-R6, R8, R10, R11, R16, R30, R31; about 30 minutes)
	TERN_TEST_SCALE=full $(GO) test -count=1 -timeout 3h -v \
	  -run 'Test(R[0-9]+|CrashConsistencyModel|CorruptState|GarbageTail|DiskFull|FsyncEIO|LedgerDurability)' \
	  ./pipeline/buffer/ ./internal/test/faults/

clean: ## remove build and demo output
	rm -rf bin out data
