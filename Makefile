# runphi build entry points. `make help` lists them.
GO        ?= go
BINARIES  := $(patsubst %/main.go,%,$(wildcard runphi/main.go jhctl/main.go cellgen/main.go))
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/runphi-go/runphi/internal/version.version=$(VERSION)
FUZZTIME  ?= 5s

.PHONY: help build build-arm64 test fuzz bench lint check-static demo ci clean

help:
	@echo "targets: build build-arm64 test fuzz bench lint check-static demo ci clean"

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

## test: the test command (unit tests, then each fuzz target briefly)
test:
	$(GO) test ./...
	FUZZTIME=$(FUZZTIME) scripts/fuzz-smoke.sh

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
