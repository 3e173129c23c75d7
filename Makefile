# overlayupd — build, install, test, demo and bench.
# `make test` and `make demo` install the Debian packages they need (scripts/deps.sh).

export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
BIN       ?= bin/overlayupd
# The tests' binary: the release build plus the crash tests' hook
# (OVERLAYUPD_CRASH_AFTER_OP), which release binaries must not have.
TESTBIN   ?= $(dir $(BIN))overlayupd-test
PKG       := ./cmd/overlayupd
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# cgo against glibc, linked statically: containerd/btrfs needs cgo, PID 1 needs no loader.
# OMIT_BTRFS=1 builds the pure-Go, squashfs-only binary instead (no cgo).
ifeq ($(OMIT_BTRFS),1)
CGO       := 0
LDFLAGS   := -s -w -X main.version=$(VERSION)
TAGS      := osusergo netgo overlayupd_omit_btrfs
else
CGO       := 1
LDFLAGS   := -s -w -X main.version=$(VERSION) -linkmode external -extldflags "-static"
TAGS      := osusergo netgo
endif
DESTDIR   ?=
PREFIX    ?= /usr
export PATH := $(PATH):$(or $(shell PATH='$(PATH)' $(GO) env GOPATH 2>/dev/null),$(HOME)/go)/bin
export OVERLAYUPD_BIN := $(abspath $(BIN))

.PHONY: all build build-test install deps lint test test-full test-unit test-vm demo bench clean

all: build

# build-one OUT EXTRA-TAGS: the one recipe both binaries are built with.
define build-one
	@mkdir -p $(dir $(1))
	CGO_ENABLED=$(CGO) $(GO) build -trimpath -tags '$(TAGS) $(2)' -ldflags '$(LDFLAGS)' -o $(1) $(PKG)
	@file $(1) | grep -q 'statically linked' || { echo "error: $(1) is not statically linked"; exit 1; }
	@ldd $(1) 2>&1 | grep -q 'not a dynamic executable' || { echo "error: ldd finds $(1) dynamic"; exit 1; }
	@size=$$(stat -c %s $(1)); [ $$size -lt 10485760 ] || { echo "error: $(1) is $$size bytes, over 10 MiB"; exit 1; }
endef

build:
	$(call build-one,$(BIN),)
	@! grep -q OVERLAYUPD_CRASH_AFTER_OP $(BIN) || { echo "error: $(BIN) contains the crash hook"; exit 1; }

build-test:
	$(call build-one,$(TESTBIN),overlayupd_crashhook)
	@grep -q OVERLAYUPD_CRASH_AFTER_OP $(TESTBIN) || { echo "error: $(TESTBIN) lacks the crash hook"; exit 1; }

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/overlayupd
	install -d $(DESTDIR)/sbin
	ln -sf $(PREFIX)/sbin/overlayupd $(DESTDIR)/sbin/init-overlay
	ln -sf $(PREFIX)/sbin/overlayupd $(DESTDIR)/sbin/overlayctl
	@# The automatic commit of trials (enable it with 'overlayupd install --auto-commit').
	install -D -m 0644 dist/overlayupd-commit.service $(DESTDIR)$(PREFIX)/lib/systemd/system/overlayupd-commit.service
	install -D -m 0755 dist/overlayupd-commit.init $(DESTDIR)/etc/init.d/overlayupd-commit

deps:
	./scripts/deps.sh

lint:
	$(GO) vet ./...
	$(GO) vet -tags overlayupd_crashhook ./cmd/...
	CGO_ENABLED=0 $(GO) vet -tags overlayupd_omit_btrfs ./cmd/... ./boot/... ./snapshot/...
	staticcheck ./...

# Every test: lint, unit, privileged (own mount namespaces), and VM boots under QEMU.
test: deps build build-test lint
	OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 60m ./...
	$(GO) test -count=1 -tags overlayupd_crashhook -run 'Crash' ./cmd/overlayupd/

# make test, plus the slow VM scenarios (OVERLAYUPD_FULL=1): the systemd root
# of the watchdog's case e, built once with mmdebstrap and cached.
test-full: deps build build-test lint
	OVERLAYUPD_FULL=1 OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 90m ./...
	$(GO) test -count=1 -tags overlayupd_crashhook -run 'Crash' ./cmd/overlayupd/

test-unit:
	$(GO) test -count=1 -short ./...

test-vm: deps build-test
	OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 60m -v ./tests/

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

clean:
	rm -rf bin
