package tests

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// assets are the host-side pieces every boot needs.
type assets struct {
	arch    *vmArch // the guest's architecture (OVERLAYUPD_VM_ARCH)
	qemu    string  // qemu-system-x86_64, -aarch64 or -arm
	busybox string  // a statically linked busybox for the guest
	kver    string  // kernel release, e.g. 6.1.0-56-cloud-amd64
	kernel  string  // vmlinuz
	modRoot string  // directory holding lib/modules/<kver>, depmod'ed
	// bin and init are the overlayupd binary under test and the PID-1
	// binary beside it, built for the host: what the tests run on the
	// host (store init, apply --store, install --root).
	bin  string
	init string
	// guestBin and guestInit are the same two built for the guest's
	// architecture, what the images hold (bin and init on amd64).
	guestBin  string
	guestInit string
	// preload are modules the initramfs loads before initModules: what a
	// kernel has as modules that the cloud one builds in (the generic
	// kernel's ext4, and crc32c, which libcrc32c wants but modules.dep
	// only names as a soft dependency).
	preload []string
}

var (
	assetsOnce sync.Once
	assetsVal  *assets
	assetsErr  error
	assetsHint string
)

// repoRoot is the module root: go test runs in the package directory.
func repoRoot() string {
	abs, _ := filepath.Abs("..")
	return abs
}

func cacheDir() string {
	if d := os.Getenv("OVERLAYUPD_CACHE"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), "tests", "cache")
}

// needVM skips under -short and returns the assets, fetching them on first
// use. A missing piece fails the test under CI=true and skips it otherwise.
func needVM(t testing.TB) *assets {
	t.Helper()
	if testing.Short() {
		t.Skip("VM test: skipped under -short")
	}
	assetsOnce.Do(func() { assetsVal, assetsHint, assetsErr = fetchAssets() })
	if assetsErr != nil {
		msg := fmt.Sprintf("VM assets unavailable: %v", assetsErr)
		if assetsHint != "" {
			msg += "\n  run as root: " + assetsHint
		}
		testroot.SkipOrFail(t, "%s", msg)
	}
	return assetsVal
}

func fetchAssets() (a *assets, hint string, err error) {
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	// The lock keeps parallel test processes from fetching twice.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	a = &assets{}
	if a.arch, err = currentArch(); err != nil {
		return nil, "", err
	}
	if a.qemu, err = findOrInstall(a.arch.qemu, a.arch.qemuPkg); err != nil {
		return nil, "apt-get install -y " + a.arch.qemuPkg, err
	}
	if a.arch.native() {
		a.busybox, err = staticBusybox()
	} else {
		a.busybox, err = cachedBusybox(filepath.Join(dir, "busybox-"+a.arch.deb), a.arch.deb)
	}
	if err != nil {
		return nil, "apt-get install -y busybox-static", err
	}
	for _, tool := range []struct{ cmd, pkg string }{
		{"mkfs.ext4", "e2fsprogs"}, {"debugfs", "e2fsprogs"}, {"cpio", "cpio"}, {"depmod", "kmod"},
	} {
		if _, err := findOrInstall(tool.cmd, tool.pkg); err != nil {
			return nil, "apt-get install -y " + tool.pkg, err
		}
	}
	a.preload = a.arch.preload
	if err := cachedKernelOf(a, filepath.Join(dir, a.arch.kernelDir()), a.arch.kernel); err != nil {
		return nil, "apt-get update && apt-get download $(apt-cache depends " + a.arch.kernel.meta + " | awk '/Depends: linux-image/{print $2}')", err
	}
	if a.bin, err = testroot.BuildBinary(); err != nil {
		return nil, "make -C " + repoRoot() + " build, or set OVERLAYUPD_BIN", err
	}
	if a.init, err = testroot.InitBinary(); err != nil {
		return nil, "make -C " + repoRoot() + " build-test", err
	}
	if a.guestBin, a.guestInit, err = guestBinaries(a); err != nil {
		return nil, "make -C " + repoRoot() + " build-test TARGET=" + a.arch.name + ", or set OVERLAYUPD_GUEST_BIN", err
	}
	return a, "", nil
}

func findOrInstall(cmd, pkg string) (string, error) {
	if p, err := testroot.LookTool(cmd); err == nil {
		return p, nil
	}
	if err := aptInstall(pkg); err != nil {
		return "", fmt.Errorf("%s missing and apt-get install %s failed: %w", cmd, pkg, err)
	}
	return testroot.LookTool(cmd)
}

func aptInstall(pkg string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if run("", "apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg) == nil {
		return nil
	}
	if err := run("", "apt-get", "update", "-qq"); err != nil {
		return err
	}
	return run("", "apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg)
}

// run runs a command in dir, folding its output into the error.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// staticBusybox finds /bin/busybox and checks that it has no ELF interpreter,
// since the guest has no loader.
func staticBusybox() (string, error) {
	const p = "/bin/busybox"
	if !isStaticELF(p) {
		if err := aptInstall("busybox-static"); err != nil {
			return "", fmt.Errorf("no static %s: %w", p, err)
		}
	}
	if !isStaticELF(p) {
		return "", fmt.Errorf("%s is not statically linked", p)
	}
	return p, nil
}

func isStaticELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// kernelFlavor is a Debian kernel the VM tests boot: its metapackage, the
// pattern of the versioned package the metapackage depends on, and the
// Debian architecture it is for when that is not the host's (enabled for
// the download only: withForeignArch).
type kernelFlavor struct {
	meta    string
	re      *regexp.Regexp
	foreign string
}

var (
	// cloudKernel is what every VM test boots: small, quick to boot.
	cloudKernel = kernelFlavor{"linux-image-cloud-amd64", regexp.MustCompile(`Depends: (linux-image-(\S+-cloud-amd64))\b`), ""}
	// genericKernel has the drivers the cloud kernel lacks, i6300esb (the
	// watchdog QEMU emulates) among them.
	genericKernel = kernelFlavor{"linux-image-amd64", regexp.MustCompile(`Depends: (linux-image-(\d\S*-amd64))\b`), ""}
	// genericPreload are the generic kernel's modules the cloud one has built in.
	genericPreload = []string{"crc32c_generic", "ext4"}
)

// cachedKernelOf uses the newest complete kernel under dir, or fetches
// Debian's current kernel of flavor fl into it: apt-get download, dpkg -x,
// depmod -b.
func cachedKernelOf(a *assets, dir string, fl kernelFlavor) error {
	done, _ := filepath.Glob(filepath.Join(dir, "*", "done"))
	sort.Strings(done)
	if len(done) == 0 {
		if err := fetchKernel(dir, fl); err != nil {
			return err
		}
		done, _ = filepath.Glob(filepath.Join(dir, "*", "done"))
	}
	if len(done) == 0 {
		return errors.New("kernel fetch left nothing behind")
	}
	root := filepath.Dir(done[len(done)-1])
	a.kver = filepath.Base(root)
	a.kernel = filepath.Join(root, "boot", "vmlinuz-"+a.kver)
	a.modRoot = root
	return nil
}

func fetchKernel(dir string, fl kernelFlavor) error {
	if fl.foreign != "" {
		return withForeignArch(fl.foreign, func() error { return fetchKernelPkg(dir, fl) })
	}
	return fetchKernelPkg(dir, fl)
}

func fetchKernelPkg(dir string, fl kernelFlavor) error {
	meta := fl.meta
	if fl.foreign != "" {
		meta += ":" + fl.foreign
	}
	deps, _ := output("apt-cache", "depends", meta)
	m := fl.re.FindStringSubmatch(deps)
	if m == nil && os.Geteuid() == 0 && fl.foreign == "" {
		if err := run("", "apt-get", "update", "-qq"); err != nil {
			return err
		}
		deps, _ = output("apt-cache", "depends", meta)
		m = fl.re.FindStringSubmatch(deps)
	}
	if m == nil {
		return fmt.Errorf("apt-cache does not know %s", meta)
	}
	pkg, kver := m[1], m[2]
	if fl.foreign != "" {
		pkg += ":" + fl.foreign
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := downloadDeb(tmp, pkg, root); err != nil {
		return err
	}
	depmod, err := testroot.LookTool("depmod")
	if err != nil {
		return err
	}
	if err := run("", depmod, "-b", root, kver); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "done"), []byte(pkg+"\n"), 0o644); err != nil {
		return err
	}
	final := filepath.Join(dir, kver)
	_ = os.RemoveAll(final)
	return os.Rename(root, final)
}
