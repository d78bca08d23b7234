# hsmlab — see README.md. Every target works on a fresh machine with Go 1.26;
# test-integration installs what it needs (SoftHSM via apt) with scripts/.

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 2s

.PHONY: run test test-integration bench lint fuzz build clean

## run: the main job — the chennai-region-outage scenario in the simulator,
## on the embedded default topology (no services needed)
run:
	$(GO) run ./cmd/hsmlab run chennai-region-outage

## test: the fast tier — vet, then every test with the race detector
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

## test-integration: the real-component tier — SoftHSM tokens through PKCS#11,
## Azurite through azblob (both installed by scripts/), SQL Server when
## HSMLAB_SQLSERVER_DSN is set (otherwise those tests say why they skip)
test-integration:
	bash scripts/install-softhsm.sh
	bash scripts/install-azurite.sh
	HSMLAB_REQUIRE_SOFTHSM=1 HSMLAB_REQUIRE_AZURITE=1 $(GO) test -race -count=1 \
		-run 'PKCS11|SoftHSM|Conformance|Azurite|SQLServer|Local' -v ./emulators/... ./topology/local/ 2>&1 | scripts/summarize-tests.sh

## bench: benchmarks of the performance targets named in the issues
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) $(PKGS)

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## fuzz: a short run of every fuzz target (FUZZTIME per target)
FUZZTIME ?= 20s
FUZZ_TARGETS = ./topology/:FuzzParse ./lab/:FuzzParseScenario ./emulators/mhsm/server/:FuzzHandler \
	./emulators/mhsm/secdomain/:FuzzParseBlobRecover ./emulators/mhsm/shamir/:FuzzCombine \
	./emulators/mhsm/rbac/:FuzzParseScope ./emulators/partition/:FuzzUnwrapPad ./emulators/partition/:FuzzUnwrap3394
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg)"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

build:
	$(GO) build -o bin/hsmlab ./cmd/hsmlab

clean:
	rm -rf bin
