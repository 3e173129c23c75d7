package tests

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// vmArch is one architecture the VM suite boots: OVERLAYUPD_VM_ARCH picks
// it (amd64, the default, arm64 or armhf). Everything that differs between
// them is in this table; the scenarios are the same.
type vmArch struct {
	name     string // the switch's value, and make's TARGET for the guest build
	deb      string // the Debian architecture of its kernel and busybox
	qemu     string // the QEMU system binary, and its Debian package
	qemuPkg  string
	machine  []string // the machine and CPU options
	console  string   // the serial console's device
	cmdline  []string // kernel parameters for this architecture only
	kernel   kernelFlavor
	machines []elf.Machine // what the guest's binaries must be built for
	cc       string        // a C compiler for the guest (static binaries)
	goenv    []string      // the go command's environment for the guest
	// bus are the modules that reach the disk before virtio_blk (a
	// built-in one is skipped: modules.builtin).
	bus []string
	// preload are the modules its kernel has as modules that the cloud
	// amd64 one builds in (assets.preload).
	preload []string
	// disk is the QEMU options that attach the image at path as the
	// first virtio disk, /dev/vda in the guest.
	disk func(path string) []string
}

var vmArches = map[string]*vmArch{
	"amd64": {
		name: "amd64", deb: "amd64", qemu: "qemu-system-x86_64", qemuPkg: "qemu-system-x86",
		console: "ttyS0",
		// no_timer_check (x86 only: another kernel hands an unknown
		// parameter to init as an argument): under software emulation on a
		// loaded host the kernel's early check of the IO-APIC timer can
		// miss its ticks and panic ("IO-APIC + timer doesn't work!") before
		// anything of ours runs; virtual machines commonly turn it off.
		cmdline:  []string{"no_timer_check"},
		kernel:   cloudKernel,
		machines: []elf.Machine{elf.EM_X86_64},
		cc:       "gcc",
		goenv:    []string{"GOARCH=amd64"},
		bus:      []string{"virtio_pci"},
		disk: func(path string) []string {
			return []string{"-drive", "file=" + path + ",format=raw,if=virtio,cache=unsafe"}
		},
	},
	"arm64": {
		name: "arm64", deb: "arm64", qemu: "qemu-system-aarch64", qemuPkg: "qemu-system-arm",
		machine: []string{"-M", "virt", "-cpu", "cortex-a53"}, console: "ttyAMA0",
		kernel:   kernelFlavor{"linux-image-arm64", regexp.MustCompile(`(?m)Depends: (linux-image-(\d\S*-arm64))(:arm64)?$`), "arm64"},
		machines: []elf.Machine{elf.EM_AARCH64},
		cc:       "aarch64-linux-gnu-gcc",
		goenv:    []string{"GOARCH=arm64"},
		bus:      []string{"virtio_mmio"},
		preload:  genericPreload,
		disk:     mmioDisk,
	},
	"armhf": {
		name: "armhf", deb: "armhf", qemu: "qemu-system-arm", qemuPkg: "qemu-system-arm",
		machine: []string{"-M", "virt", "-cpu", "cortex-a15"}, console: "ttyAMA0",
		kernel:   kernelFlavor{"linux-image-armmp", regexp.MustCompile(`(?m)Depends: (linux-image-(\d\S*-armmp))(:armhf)?$`), "armhf"},
		machines: []elf.Machine{elf.EM_ARM},
		cc:       "arm-linux-gnueabihf-gcc",
		goenv:    []string{"GOARCH=arm", "GOARM=7"},
		bus:      []string{"virtio_mmio"},
		preload:  genericPreload,
		disk:     mmioDisk,
	},
}

// trampolineArgs are the options of a host-side `overlayupd store init`
// for this guest: the guest's init-overlay as the store's trampoline (the
// host's binary would otherwise install the one beside it, the host's).
func (a *assets) trampolineArgs() []string {
	if a.arch.native() {
		return nil
	}
	return []string{"--trampoline", a.guestInit}
}

// mmioDisk attaches a disk on the virt machine's virtio-mmio transport.
func mmioDisk(path string) []string {
	return []string{"-drive", "file=" + path + ",format=raw,if=none,id=vda,cache=unsafe",
		"-device", "virtio-blk-device,drive=vda"}
}

// currentArch is the architecture OVERLAYUPD_VM_ARCH names.
func currentArch() (*vmArch, error) {
	name := os.Getenv("OVERLAYUPD_VM_ARCH")
	if name == "" {
		name = "amd64"
	}
	a, ok := vmArches[name]
	if !ok {
		return nil, fmt.Errorf("OVERLAYUPD_VM_ARCH=%s: not one of amd64, arm64, armhf", name)
	}
	return a, nil
}

// native reports whether the guest runs the host's binaries (the
// overlayupd under test is built for the host).
func (va *vmArch) native() bool { return va.name == "amd64" }

// needArch skips a test that only holds on some architectures, saying why.
func needArch(t testing.TB, a *assets, why string, names ...string) {
	t.Helper()
	for _, n := range names {
		if a.arch.name == n {
			return
		}
	}
	t.Skipf("on %s only (OVERLAYUPD_VM_ARCH=%s): %s", strings.Join(names, ", "), a.arch.name, why)
}

// checkMachine fails unless the ELF file p is built for one of va's machines.
func (va *vmArch) checkMachine(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, m := range va.machines {
		if f.Machine == m {
			return nil
		}
	}
	return fmt.Errorf("%s is built for %v, not for the %s guest", p, f.Machine, va.name)
}

// kernelDir is the cache directory of the architecture's kernel.
func (va *vmArch) kernelDir() string {
	if va.native() {
		return "kernel"
	}
	return "kernel-" + va.name
}

// withForeignArch runs fn with the Debian architecture deb enabled in dpkg
// and apt's lists updated for it, then disables it again (unless it was
// enabled before): the host installs nothing of that architecture, it only
// downloads packages to unpack them (apt-get download, dpkg -x).
func withForeignArch(deb string, fn func() error) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("fetching %s packages needs root (dpkg --add-architecture %s)", deb, deb)
	}
	had, _ := output("dpkg", "--print-foreign-architectures")
	if !slices.Contains(strings.Fields(had), deb) {
		if err := run("", "dpkg", "--add-architecture", deb); err != nil {
			return err
		}
		defer func() { _ = run("", "dpkg", "--remove-architecture", deb) }()
	}
	// An update that fails for one index (a mirror caught mid-sync) may
	// still have brought the lists fn needs: its error only explains fn's.
	updErr := run("", "apt-get", "update", "-qq")
	if err := fn(); err != nil {
		if updErr != nil {
			return fmt.Errorf("%w (after a failed %v)", err, updErr)
		}
		return err
	}
	return nil
}

// downloadDeb downloads the package pkg (name[:arch]) into tmp with
// apt-get download and unpacks it into root with dpkg -x.
func downloadDeb(tmp, pkg, root string) error {
	// apt-get download drops privileges to _apt; let it write here.
	_ = os.Chmod(tmp, 0o777)
	if err := run(tmp, "apt-get", "download", "-qq", pkg); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: got %d .deb files", pkg, len(debs))
	}
	return run("", "dpkg", "-x", debs[0], root)
}

// cachedBusybox is bin/busybox of Debian's busybox-static for the
// architecture deb, fetched once into dir.
func cachedBusybox(dir, deb string) (string, error) {
	bb := filepath.Join(dir, "bin", "busybox")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return bb, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-busybox-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := withForeignArch(deb, func() error { return downloadDeb(tmp, "busybox-static:"+deb, root) }); err != nil {
		return "", err
	}
	if !isStaticELF(filepath.Join(root, "bin", "busybox")) {
		return "", fmt.Errorf("busybox-static:%s has no static bin/busybox", deb)
	}
	if err := os.WriteFile(filepath.Join(root, "done"), []byte("busybox-static:"+deb+"\n"), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	return bb, os.Rename(root, dir)
}

// guestBinaries are the overlayupd test binary and init-overlay that the
// images hold: the host's on amd64; else $OVERLAYUPD_GUEST_BIN (make
// test-arm sets it to make build-test TARGET=<arch>'s output) with
// init-overlay beside it, or what that make target builds into a temp
// directory. Both must be built for the guest.
func guestBinaries(a *assets) (bin, init string, err error) {
	if a.arch.native() {
		return a.bin, a.init, nil
	}
	bin = os.Getenv("OVERLAYUPD_GUEST_BIN")
	if bin == "" {
		bin = filepath.Join(scratchDir, "guest-"+a.arch.name, "overlayupd")
		cmd := exec.Command("make", "-C", repoRoot(), "--no-print-directory", "build-test", "TARGET="+a.arch.name, "TESTBIN="+bin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("make build-test TARGET=%s: %w\n%s", a.arch.name, err, out)
		}
	}
	init = filepath.Join(filepath.Dir(bin), "init-overlay")
	for _, p := range []string{bin, init} {
		if err := a.arch.checkMachine(p); err != nil {
			return "", "", err
		}
	}
	return bin, init, nil
}
