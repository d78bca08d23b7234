# hsmlab — see README.md. Every target works on a fresh machine with Go 1.26;
# test-integration installs what it needs (SoftHSM via apt) with scripts/.

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 2s

.PHONY: run test test-integration bench lint fuzz build clean

## run: the main job on the embedded default topology (no services needed)
run:
	@$(GO) run ./cmd/hsmlab lint; s=$$?; [ $$s -le 1 ] || exit $$s
	@echo
	@$(GO) run ./cmd/hsmlab cost

## test: the fast tier — vet, then every test with the race detector
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

## test-integration: the real-component tier (SoftHSM tokens through PKCS#11)
test-integration:
	bash scripts/install-softhsm.sh
	HSMLAB_REQUIRE_SOFTHSM=1 $(GO) test -race -count=1 -run 'PKCS11|SoftHSM|Conformance' -v ./emulators/... 2>&1 | scripts/summarize-tests.sh

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
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./topology/

build:
	$(GO) build -o bin/hsmlab ./cmd/hsmlab

clean:
	rm -rf bin
