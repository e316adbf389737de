# runphi build entry points. `make help` lists them.
GO        ?= go
BINARIES  := $(patsubst %/main.go,%,$(wildcard runphi/main.go jhctl/main.go cellgen/main.go))
VERSION   ?= $(shell cat VERSION)
LDFLAGS   := -s -w -X github.com/runphi-go/runphi/internal/version.version=$(VERSION)
FUZZTIME  ?= 5s

.PHONY: help setup build build-arm64 test unit integration fuzz bench lint check-static demo ci clean

help:
	@echo "targets: setup build build-arm64 test unit integration fuzz bench lint check-static demo ci clean"

## build: host binaries in bin/
build:
	@mkdir -p bin
	$(foreach b,$(BINARIES),$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(b) ./$(b) &&) true

## build-arm64: static aarch64 binaries in bin/arm64/
build-arm64:
	@mkdir -p bin/arm64
	$(foreach b,$(BINARIES),CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/arm64/$(b) ./$(b) &&) true

## check-static: fail unless every bin/arm64 binary is a static aarch64 ELF
check-static: build-arm64
	scripts/check-static.sh $(addprefix bin/arm64/,$(BINARIES))

## test: the test command: unit tests, each fuzz target briefly, then the
## QEMU arm64 integration suite against the emulated Jailhouse
test: setup unit fuzz integration

## setup: install the Debian packages builds and tests use (root; idempotent)
setup:
	bash scripts/setup-debian.sh

unit:
	$(GO) test ./...
	$(GO) test -tags runphi_emu ./runphi/...

## integration: boot QEMU arm64 and run the scenarios in the guest (setup needs root)
integration:
	scripts/setup-integration.sh
	RUNPHI_INTEGRATION=1 $(GO) test -v -count=1 -timeout 20m ./integration/

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz-smoke.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 GOARCH=arm64 $(GO) vet ./...

## demo: the main job (see README)
demo:
	scripts/demo.sh

## ci: what .ci/run runs after installing packages
ci: lint test check-static

clean:
	rm -rf bin
