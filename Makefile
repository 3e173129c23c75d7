# overlayupd — build, install, test, demo and bench.
# `make test` and `make demo` install the Debian packages they need (scripts/deps.sh).

export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
# A TARGET's binaries go to bin/TARGET/ (TARGET below).
BIN       ?= bin/$(if $(TARGET),$(TARGET)/)overlayupd
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
# The PID-1 binary's default GODEBUG (the environment's GODEBUG still
# overrides it) is the one the go command links (go.mod's go line and
# cmd/init-overlay's //go:debug lines, as go list gives it) plus
# INIT_GODEBUG_ADD, runtime settings a //go:debug line does not take. The
# build recipe (build-init) links it into the variable the go command itself
# sets from those lines (a later -X wins), and fails if go list does.
# cmd/init-overlay's doc says why each; TestGodebugDefault checks that they
# take.
INIT_GODEBUG_ADD := asyncpreemptoff=1
# -E main.prelude: its entry point asks the kernel for the whole binary
# before the runtime starts (cmd/init-overlay/prelude.go says why); on the
# architectures it is written for (a host build elsewhere goes without).
INIT_LDFLAGS = -s -w $(if $(filter amd64 arm64 arm,$(INIT_GOARCH)),-E main.prelude) -X main.version=$(VERSION)
INIT_MAX  := 3145728
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# TARGET is the machine the binaries are for; empty: this one. Each names its
# Go target (T_GO), the C cross-compiler of the cgo build (Debian's
# gcc-*-linux-gnu*, scripts/deps.sh installs them), what `file` says of its
# ELF machine (T_ELF) and how --version is run on the oldest CPU of its kind
# (T_RUN: qemu-user, or nothing for this machine's own).
#   amd64  x86-64 (cgo; built on an amd64 host)
#   arm64  AArch64: Raspberry Pi 3/4/5 and most boards with a 64-bit OS
#   armhf  ARMv7 with hard float (GOARM=7): Pi 2 and 32-bit OSes on newer Pis
#   armv6  ARMv6 (GOARM=6): Pi Zero and Pi 1; pure Go, squashfs stores only
#          (Debian has no armv6 C cross-compiler, so no cgo, so no btrfs)
TARGET    ?=
ifeq ($(TARGET),)
T_GO      :=
T_ELF     :=
T_RUN     :=
else ifeq ($(TARGET),amd64)
T_GO      := GOOS=linux GOARCH=amd64
T_ELF     := x86-64
T_RUN     :=
else ifeq ($(TARGET),arm64)
T_GO      := GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc
T_ELF     := ARM aarch64
T_RUN     := qemu-aarch64-static -cpu cortex-a53
else ifeq ($(TARGET),armhf)
T_GO      := GOOS=linux GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc
T_ELF     := 32-bit LSB executable, ARM, EABI5
T_RUN     := qemu-arm-static -cpu cortex-a8
else ifeq ($(TARGET),armv6)
T_GO      := GOOS=linux GOARCH=arm GOARM=6
T_ELF     := 32-bit LSB executable, ARM, EABI5
T_RUN     := qemu-arm-static -cpu arm1176
OMIT_BTRFS := 1
else
$(error TARGET=$(TARGET): not one of amd64, arm64, armhf, armv6)
endif
INIT_GOARCH := $(or $(patsubst GOARCH=%,%,$(filter GOARCH=%,$(T_GO))),$(shell PATH='$(PATH)' $(GO) env GOARCH 2>/dev/null))
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

.PHONY: all build build-test release install deps lint test test-full test-unit test-arm-unit test-unit-on test-arm test-arm-smoke test-arm-debian test-vm-on test-vm crashtest demo bench clean

all: build

# check-static OUT MAX-BYTES CGO VERSION-WORD: static (file says so, no ELF
# interpreter, and ldd agrees when it can run it), under MAX-BYTES, built for
# TARGET (ELF machine, GOARCH and GOARM as go version -m reads them) with
# CGO_ENABLED=CGO, and its --version runs (under qemu-user for another
# machine, on the oldest CPU of the target's kind) and names VERSION-WORD.
define check-static
	@file $(1) | grep -q 'statically linked' || { echo "error: $(1) is not statically linked"; exit 1; }
	@! readelf -lW $(1) | grep -q 'INTERP' || { echo "error: $(1) has an ELF interpreter"; exit 1; }
	@[ -n "$(TARGET)" ] || ldd $(1) 2>&1 | grep -q 'not a dynamic executable' || { echo "error: ldd finds $(1) dynamic"; exit 1; }
	@size=$$(stat -c %s $(1)); [ $$size -lt $(2) ] || { echo "error: $(1) is $$size bytes, over the $(2)-byte budget"; exit 1; }
	@[ -z '$(T_ELF)' ] || file $(1) | grep -q '$(T_ELF)' || { echo "error: $(1) is not for $(TARGET) ($(T_ELF)): $$(file -b $(1))"; exit 1; }
	@m=$$($(GO) version -m $(1)); \
	 echo "$$m" | grep -q "CGO_ENABLED=$(3)\b" || { echo "error: $(1) is not built with CGO_ENABLED=$(3)"; exit 1; }; \
	 for kv in $(filter GOARCH=% GOARM=%,$(T_GO)); do echo "$$m" | grep -q "build	$$kv\b" || { echo "error: $(1) is not built with $$kv"; exit 1; }; done
	@$(T_RUN) $(1) --version | grep -q '^$(4) ' || { echo "error: $(1) --version does not run$(if $(T_RUN), under $(T_RUN))"; exit 1; }
endef

# build-one OUT EXTRA-TAGS: the one recipe every CLI binary is built with,
# for this machine or TARGET's.
define build-one
	@mkdir -p $(dir $(1))
	$(T_GO) CGO_ENABLED=$(CGO) $(GO) build -trimpath -tags '$(TAGS) $(2)' -ldflags '$(LDFLAGS)' -o $(1) $(PKG)
	$(call check-static,$(1),10485760,$(CGO),overlayupd)
endef

# build-init OUT EXTRA-TAGS: the PID-1 binary, always pure Go (it boots btrfs
# stores too: mounting a subvolume needs no cgo), under 3 MiB.
define build-init
	@mkdir -p $(dir $(1))
	gd=$$($(GO) list -f '{{.DefaultGODEBUG}}' $(INITPKG)) && \
	$(T_GO) CGO_ENABLED=0 $(GO) build -trimpath -tags 'osusergo netgo $(2)' -ldflags "$(INIT_LDFLAGS) -X runtime.godebugDefault=$${gd:+$$gd,}$(INIT_GODEBUG_ADD)" -o $(1) $(INITPKG)
	$(call check-static,$(1),$(INIT_MAX),0,init-overlay)
endef

# NODIRSYNC marks a binary built with the overlayupd_nodirsync tag, whose
# directory fsyncs do nothing (internal/atomicfile/nodirsync.go): only the
# flush-point replay test builds one, to show that its check catches it.
NODIRSYNC := OVERLAYUPD_NODIRSYNC

# FOLDHOOK marks an init-overlay built with the overlayupd_crashhook tag,
# whose fold can be stopped from the kernel command line (boot/foldhook.go):
# only the test build has it.
FOLDHOOK := overlayupd.test_fold_pause

build:
	$(call build-one,$(BIN),)
	@! grep -q OVERLAYUPD_CRASH_AFTER_OP $(BIN) || { echo "error: $(BIN) contains the crash hook"; exit 1; }
	$(call build-init,$(INITBIN),)
	@! grep -q $(FOLDHOOK) $(INITBIN) || { echo "error: $(INITBIN) contains the fold's test hook"; exit 1; }
	@! grep -q $(NODIRSYNC) $(BIN) $(INITBIN) || { echo "error: a release binary skips directory fsyncs ($(NODIRSYNC))"; exit 1; }

# TEST_TAGS adds build tags to both test binaries (the flush-point replay
# test's overlayupd_nodirsync); without it they must fsync like a release.
build-test:
	$(call build-one,$(TESTBIN),overlayupd_crashhook $(TEST_TAGS))
	@grep -q OVERLAYUPD_CRASH_AFTER_OP $(TESTBIN) || { echo "error: $(TESTBIN) lacks the crash hook"; exit 1; }
	$(call build-init,$(TESTINIT),overlayupd_crashhook $(TEST_TAGS))
	@grep -q $(FOLDHOOK) $(TESTINIT) || { echo "error: $(TESTINIT) lacks the fold's test hook"; exit 1; }
ifneq ($(filter overlayupd_nodirsync,$(TEST_TAGS)),)
	@grep -q $(NODIRSYNC) $(TESTBIN) && grep -q $(NODIRSYNC) $(TESTINIT) || { echo "error: the nodirsync build lacks its marker"; exit 1; }
else
	@! grep -q $(NODIRSYNC) $(TESTBIN) $(TESTINIT) || { echo "error: a test binary skips directory fsyncs ($(NODIRSYNC))"; exit 1; }
endif

# The release: each TARGET's overlayupd and init-overlay, built and checked
# by `make build` (static, its machine, its GOARM and cgo setting, --version
# under qemu-user, no crash hook), in RELEASE_DIR/linux-TARGET/ (the two
# binaries side by side, as store init looks for its trampoline), and a
# SHA256SUMS over them. RELEASE_DIR is not dist/ itself: that holds the
# files `make install` ships.
RELEASE_DIR     ?= dist/release
RELEASE_TARGETS := amd64 arm64 armhf armv6
release: deps
	rm -rf $(RELEASE_DIR)
	@set -e; for t in $(RELEASE_TARGETS); do \
		$(MAKE) --no-print-directory build TARGET=$$t BIN=$(RELEASE_DIR)/linux-$$t/overlayupd VERSION=$(VERSION); \
	done
	cd $(RELEASE_DIR) && sha256sum linux-*/* > SHA256SUMS
	@n=$$(wc -l < $(RELEASE_DIR)/SHA256SUMS); [ $$n -eq $$(( 2 * $(words $(RELEASE_TARGETS)) )) ] || { echo "error: $$n files in $(RELEASE_DIR)"; exit 1; }
	@cat $(RELEASE_DIR)/SHA256SUMS; ls -l $(RELEASE_DIR)/linux-*

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
	$(GO) vet -tags overlayupd_crashhook ./cmd/... ./boot/...
	$(GO) vet -tags overlayupd_nodirsync ./internal/atomicfile/ ./trampoline/
	CGO_ENABLED=0 $(GO) vet ./cmd/init-overlay/ ./boot/...
	CGO_ENABLED=0 $(GO) vet -tags overlayupd_omit_btrfs ./cmd/... ./boot/... ./snapshot/...
	@# 32-bit ARM, tests included: Statfs_t's and Rusage's fields are int32 there.
	GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) vet ./...
	staticcheck ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  [ -z "$$unformatted" ] || { echo "gofmt: not formatted (run gofmt -w on them): $$unformatted"; exit 1; }

# Every test: lint, unit, privileged (own mount namespaces), and VM boots
# under QEMU; then the unit and privileged tests again on arm64, armhf and
# armv6 under qemu-user (test-arm-unit), and four VM scenarios on arm64 and
# armhf guests (test-arm-smoke).
test: deps build build-test lint
	OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 60m ./...
	$(GO) test -count=1 -tags overlayupd_crashhook -run 'Crash' ./cmd/overlayupd/
	$(MAKE) --no-print-directory test-arm-unit
	$(MAKE) --no-print-directory test-arm-smoke

# make test, plus the slow VM scenarios (OVERLAYUPD_FULL=1): the Debian
# root's full store walk, classic mode and btrfs update (tests/debian_test.go);
# then the Debian root's scenarios on an arm64 guest (test-arm-debian).
test-full: deps build build-test lint
	OVERLAYUPD_FULL=1 OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 90m ./...
	$(GO) test -count=1 -tags overlayupd_crashhook -run 'Crash' ./cmd/overlayupd/
	$(MAKE) --no-print-directory test-arm-debian

# Power cuts at scale: the random walk of tests/powercut_test.go with 500 cuts
# (make test runs 50); POWERCUTS and POWERCUT_SEED override.
crashtest: deps build-test
	OVERLAYUPD_POWERCUTS=$(or $(POWERCUTS),500) OVERLAYUPD_POWERCUT_SEED=$(or $(POWERCUT_SEED),20261201) \
		OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 12h -v -run 'TestPowerCutsRandom' ./tests/

# Unit tests only (-short): no binary is built or checked (the exported
# OVERLAYUPD_BIN is make build's, not the test build the binary checks want).
test-unit:
	OVERLAYUPD_BIN= $(GO) test -count=1 -short ./...

# Unit and privileged tests on other architectures: every package's tests
# but the VM suite's (tests/, which runs on the host) and the CLI's
# (cmd/overlayupd: its btrfs commands need cgo), cross-compiled without cgo
# for each of ARM_UNIT_TARGETS and run under qemu-user on the oldest CPU of
# its kind (go test -exec), so that struct layouts, ioctl numbers and
# Statfs_t's field widths are checked on the target. No binfmt_misc handler
# is registered (that would change the host for every process): a test
# that runs its own binary again does it through the emulator
# (testroot.Self); one that needs what qemu-user lacks (openat2, some btrfs
# ioctls, subvolumes without cgo) or boots the host's build skips, saying why.
ARM_UNIT_TARGETS := arm64 armhf armv6
ARM_UNIT_PKGS     = $(shell PATH='$(PATH)' $(GO) list ./... | grep -v -e '/tests$$' -e '/cmd/overlayupd$$')
test-arm-unit: deps build-test
	@set -e; for t in $(ARM_UNIT_TARGETS); do \
		$(MAKE) --no-print-directory test-unit-on TARGET=$$t HOST_TESTBIN=$(abspath $(TESTBIN)); \
	done

# test-unit-on TARGET=...: test-arm-unit for one target. The test binaries
# get the host's environment without the cross build's (a test that runs
# make or go builds for the host), and OVERLAYUPD_BIN is the host's test
# build (for the tests that exec it; the host runs it natively).
#
# qemu-user can deadlock when a multi-threaded guest forks (the child hangs
# on one of qemu's own locks before it reaches exec: seen in CI, once, in a
# test that runs mksquashfs). So a package that fails, or hangs until its
# 8-minute timeout (the slowest takes about one), is run once more, alone;
# a real failure fails again.
UNIT_ON = OVERLAYUPD_TEST_EMULATOR='$(T_RUN)' OVERLAYUPD_BIN=$(HOST_TESTBIN) $(T_GO) CGO_ENABLED=0 \
	$(GO) test -count=1 -timeout 8m -exec 'env $(foreach v,GOOS GOARCH GOARM CC CGO_ENABLED TARGET HOST_TESTBIN MAKEFLAGS MFLAGS MAKELEVEL,-u $(v)) $(T_RUN)'
test-unit-on:
	@[ -n "$(T_RUN)" ] || { echo "error: test-unit-on needs a TARGET run under qemu-user"; exit 1; }
	@out=$$(mktemp); rcf=$$(mktemp); \
	{ $(UNIT_ON) $(ARM_UNIT_PKGS); echo $$? >$$rcf; } 2>&1 | tee $$out; \
	rc=$$(cat $$rcf); \
	if [ "$$rc" != 0 ]; then \
		failed=$$(awk '$$1 == "FAIL" && $$2 ~ /\// {print $$2}' $$out | sort -u | tr '\n' ' '); \
		if [ -n "$$failed" ]; then \
			echo "test-unit-on $(TARGET): failed: $$failed; once more, alone (qemu-user fork deadlocks)"; \
			$(UNIT_ON) $$failed; rc=$$?; \
		fi; \
	fi; \
	rm -f $$out $$rcf; exit $$rc

# The VM suite on ARM guests (OVERLAYUPD_VM_ARCH, tests/arch_test.go), for
# each of ARM_VM_ARCHES: test-arm runs all of it, test-arm-smoke (part of
# make test) one classic scenario, store apply, trial, commit and rollback,
# a failed trial that falls back, and a crash test. The guest's binaries
# are make build-test TARGET=ARCH's; the host-side steps run the host's.
ARM_VM_ARCHES := arm64 armhf
ARM_SMOKE     := ^(TestClassicTmpfs|TestStoreCommitRollback|TestStorePanickingTrial|TestCrashApply)$$
test-arm: deps build-test
	@set -e; for a in $(ARM_VM_ARCHES); do $(MAKE) --no-print-directory test-vm-on ARCH=$$a VMTIMEOUT=90m; done

test-arm-smoke: deps build-test
	@set -e; for a in $(ARM_VM_ARCHES); do $(MAKE) --no-print-directory test-vm-on ARCH=$$a RUN='$(ARM_SMOKE)'; done

# The Debian bookworm root with systemd through the squashfs and the btrfs
# store on an arm64 guest (part of make test-full): the root is built for
# arm64 without binfmt_misc, its packages installed by a boot of the guest
# (tests/debforeign_test.go), and cached apart from the amd64 one.
ARM_DEBIAN := ^(TestDebianStore|TestDebianBtrfsUpdate)$$
test-arm-debian: deps build-test
	$(MAKE) --no-print-directory test-vm-on ARCH=arm64 RUN='$(ARM_DEBIAN)' FULL=1 VMTIMEOUT=90m

# test-vm-on ARCH=arm64|armhf [RUN=regexp] [FULL=1]: the VM suite on one
# guest architecture (FULL=1: with the slow scenarios, OVERLAYUPD_FULL).
test-vm-on:
	$(MAKE) --no-print-directory build-test TARGET=$(ARCH)
	$(if $(FULL),OVERLAYUPD_FULL=1) OVERLAYUPD_VM_ARCH=$(ARCH) OVERLAYUPD_GUEST_BIN=$(abspath bin/$(ARCH)/overlayupd-test) OVERLAYUPD_BIN=$(abspath $(TESTBIN)) \
		$(GO) test -count=1 -timeout $(or $(VMTIMEOUT),30m) $(if $(RUN),-run '$(RUN)') ./tests/

test-vm: deps build-test
	OVERLAYUPD_BIN=$(abspath $(TESTBIN)) $(GO) test -count=1 -timeout 60m -v ./tests/

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

clean:
	rm -rf bin $(RELEASE_DIR)
