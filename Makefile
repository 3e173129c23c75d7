# overlayupd — build, install, test, demo and bench.
# `make test` and `make demo` install the Debian packages they need (scripts/deps.sh).

export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
BIN       ?= bin/overlayupd
# The tests' binary: the release build plus the crash tests' hook
# (OVERLAYUPD_CRASH_AFTER_OP), which release binaries must not have.
TESTBIN   ?= $(dir $(BIN))overlayupd-test
PKG       := ./cmd/overlayupd
# The PID-1 binary: pure Go, only the boot path (cmd/init-overlay's doc says
# why it is a binary of its own). It sits beside the CLI binary, where
# `store init` finds it; the tests' binary pair shares the directory too.
INITBIN   ?= $(dir $(BIN))init-overlay
TESTINIT  := $(dir $(TESTBIN))init-overlay
INITPKG   := ./cmd/init-overlay
INIT_LDFLAGS = -s -w -X main.version=$(VERSION)
INIT_MAX  := 3145728
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

.PHONY: all build build-test install deps lint test test-full test-unit test-vm crashtest demo bench clean

all: build

# check-static OUT MAX-BYTES: static (file and ldd agree) and under MAX-BYTES.
define check-static
	@file $(1) | grep -q 'statically linked' || { echo "error: $(1) is not statically linked"; exit 1; }
	@ldd $(1) 2>&1 | grep -q 'not a dynamic executable' || { echo "error: ldd finds $(1) dynamic"; exit 1; }
	@size=$$(stat -c %s $(1)); [ $$size -lt $(2) ] || { echo "error: $(1) is $$size bytes, over the $(2)-byte budget"; exit 1; }
endef

# build-one OUT EXTRA-TAGS: the one recipe both CLI binaries are built with.
define build-one
	@mkdir -p $(dir $(1))
	CGO_ENABLED=$(CGO) $(GO) build -trimpath -tags '$(TAGS) $(2)' -ldflags '$(LDFLAGS)' -o $(1) $(PKG)
	$(call check-static,$(1),10485760)
endef

# build-init OUT EXTRA-TAGS: the PID-1 binary, always pure Go (it boots btrfs
# stores too: mounting a subvolume needs no cgo), under 3 MiB.
define build-init
	@mkdir -p $(dir $(1))
	CGO_ENABLED=0 $(GO) build -trimpath -tags 'osusergo netgo $(2)' -ldflags '$(INIT_LDFLAGS)' -o $(1) $(INITPKG)
	$(call check-static,$(1),$(INIT_MAX))
endef

# NODIRSYNC marks a binary built with the overlayupd_nodirsync tag, whose
# directory fsyncs do nothing (internal/atomicfile/nodirsync.go): only the
# flush-point replay test builds one, to show that its check catches it.
NODIRSYNC := OVERLAYUPD_NODIRSYNC

build:
	$(call build-one,$(BIN),)
	@! grep -q OVERLAYUPD_CRASH_AFTER_OP $(BIN) || { echo "error: $(BIN) contains the crash hook"; exit 1; }
	$(call build-init,$(INITBIN),)
	@! grep -q $(NODIRSYNC) $(BIN) $(INITBIN) || { echo "error: a release binary skips directory fsyncs ($(NODIRSYNC))"; exit 1; }

# TEST_TAGS adds build tags to both test binaries (the flush-point replay
# test's overlayupd_nodirsync); without it they must fsync like a release.
build-test:
	$(call build-one,$(TESTBIN),overlayupd_crashhook $(TEST_TAGS))
	@grep -q OVERLAYUPD_CRASH_AFTER_OP $(TESTBIN) || { echo "error: $(TESTBIN) lacks the crash hook"; exit 1; }
	$(call build-init,$(TESTINIT),$(TEST_TAGS))
ifneq ($(filter overlayupd_nodirsync,$(TEST_TAGS)),)
	@grep -q $(NODIRSYNC) $(TESTBIN) && grep -q $(NODIRSYNC) $(TESTINIT) || { echo "error: the nodirsync build lacks its marker"; exit 1; }
else
	@! grep -q $(NODIRSYNC) $(TESTBIN) $(TESTINIT) || { echo "error: a test binary skips directory fsyncs ($(NODIRSYNC))"; exit 1; }
endif

# init-overlay goes to /sbin itself, not a link into $(PREFIX): the kernel
# runs it before anything else is mounted, and /usr may be a partition of its
# own. On a merged-/usr system /sbin is $(PREFIX)/sbin and both land together.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/overlayupd
	install -D -m 0755 $(INITBIN) $(DESTDIR)/sbin/init-overlay
	[ "$$(readlink -f $(DESTDIR)/sbin)" = "$$(readlink -f $(DESTDIR)$(PREFIX)/sbin)" ] || \
		ln -sf /sbin/init-overlay $(DESTDIR)$(PREFIX)/sbin/init-overlay
	ln -sf $(PREFIX)/sbin/overlayupd $(DESTDIR)/sbin/overlayctl
	@# The automatic commit of trials (enable it with 'overlayupd install --auto-commit').
	install -D -m 0644 dist/overlayupd-commit.service $(DESTDIR)$(PREFIX)/lib/systemd/system/overlayupd-commit.service
	install -D -m 0755 dist/overlayupd-commit.init $(DESTDIR)/etc/init.d/overlayupd-commit

deps:
	./scripts/deps.sh

lint:
	$(GO) vet ./...
	$(GO) vet -tags overlayupd_crashhook ./cmd/...
	$(GO) vet -tags overlayupd_nodirsync ./internal/atomicfile/ ./trampoline/
	CGO_ENABLED=0 $(GO) vet ./cmd/init-overlay/ ./boot/...
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

# Power cuts at scale: the random walk of tests/powercut_test.go with 500 cuts
# (make test runs 50); POWERCUTS and POWERCUT_SEED override.
crashtest: deps build-test
	OVERLAYUPD_POWERCUTS=$(or $(POWERCUTS),500) OVERLAYUPD_POWERCUT_SEED=$(or $(POWERCUT_SEED),20261201) \
		OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 12h -v -run 'TestPowerCutsRandom' ./tests/

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
