# overlayupd — build, install, test, demo and bench.
# `make test` and `make demo` install the Debian packages they need (scripts/deps.sh).

export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
BIN       := bin/overlayupd
PKG       := ./cmd/overlayupd
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# cgo against glibc, linked statically: containerd/btrfs needs cgo, PID 1 needs no loader.
LDFLAGS   := -s -w -X main.version=$(VERSION) -linkmode external -extldflags "-static"
TAGS      := osusergo netgo
DESTDIR   ?=
PREFIX    ?= /usr
export OVERLAYUPD_BIN := $(abspath $(BIN))

.PHONY: all build install deps test test-unit test-vm demo bench clean

all: build

build:
	@mkdir -p $(dir $(BIN))
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) $(PKG)
	@file $(BIN) | grep -q 'statically linked' || { echo "error: $(BIN) is not statically linked"; exit 1; }
	@ldd $(BIN) 2>&1 | grep -q 'not a dynamic executable' || { echo "error: ldd finds $(BIN) dynamic"; exit 1; }
	@size=$$(stat -c %s $(BIN)); [ $$size -lt 10485760 ] || { echo "error: $(BIN) is $$size bytes, over 10 MiB"; exit 1; }

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/overlayupd
	install -d $(DESTDIR)/sbin
	ln -sf $(PREFIX)/sbin/overlayupd $(DESTDIR)/sbin/init-overlay
	ln -sf $(PREFIX)/sbin/overlayupd $(DESTDIR)/sbin/overlayctl

deps:
	./scripts/deps.sh

# Every test: unit, privileged (own mount namespaces), and VM boots under QEMU.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

test-unit:
	$(GO) test -count=1 -short ./...

test-vm: deps build
	$(GO) test -count=1 -timeout 60m -v ./tests/

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

clean:
	rm -rf bin
