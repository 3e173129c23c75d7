package tests

// A real Debian root for the VM tests: bookworm built by mmdebstrap from
// Debian's packages, customized, and cached as a squashfs image under
// cache/debian/. The watchdog's case e boots it with systemd; the
// never-brick issue (a real root through the store) and the arm issue can
// reuse debianRoot with their own spec.
//
// The root is the guest's architecture (OVERLAYUPD_VM_ARCH). The host's own
// is made by mmdebstrap alone. Another one cannot be: mmdebstrap would run
// the maintainer scripts of the guest's packages on the host, which needs
// a qemu-user binfmt_misc handler, and registering one changes the host for
// every process (a mount namespace does not make it private). So the
// foreign root is made in two stages, as debootstrap --foreign does:
// mmdebstrap downloads and extracts the packages (--variant=extract, no
// program of the guest runs), then a boot of the guest's kernel on that
// tree installs them with the guest's own dpkg (debianSecondStage).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// debianSpec says what debianRoot builds. Bump Rev when Customize changes:
// the cache key is made of the fields, not of the code.
type debianSpec struct {
	Name    string   // names the cached image
	Suite   string   // default bookworm
	Variant string   // mmdebstrap --variant, default minbase
	Include []string // more packages
	Rev     string
	// Customize changes the tree (as root, on the host, nothing mounted)
	// before it is squashed.
	Customize func(t testing.TB, dir string)
	// MaxSize fails the build of an image larger than this (bytes).
	MaxSize int64
	// arch is the guest's architecture (set by debianRoot).
	arch *vmArch
}

// archTag is "" for the host's architecture (whose cache names predate the
// others) and "-ARCH" for another.
func (s debianSpec) archTag() string {
	if s.arch == nil || s.arch.native() {
		return ""
	}
	return "-" + s.arch.deb
}

// debianComp is how the Debian images are compressed: zstd at a low level
// squashes the 150 MiB tree in about a second (xz took 25-40 s an image,
// three images a make test on a fresh clone) into ~46 MiB; the kernels of
// every guest architecture read it, and so does apply's validation.
var debianComp = []string{"-comp", "zstd", "-Xcompression-level", "3"}

func (s debianSpec) key() string {
	fields := append([]string{s.Suite, s.Variant, s.Rev}, s.Include...)
	h := sha256.Sum256([]byte(strings.Join(append(fields, debianComp...), "\x00")))
	return s.Name + s.archTag() + "-" + hex.EncodeToString(h[:6])
}

var debianMu sync.Mutex

// debianRoot returns the cached squashfs image of spec, building what is
// missing: the base (mmdebstrap's tarball of the suite, variant and
// packages, cached apart because it is the slow part: downloads), then the
// image (the base unpacked, customized, squashed with debianComp). mmdebstrap
// runs in a private mount namespace: its chroot mounts never reach the
// host's. A missing tool skips the test, or fails it under CI=true.
func debianRoot(t *testing.T, spec debianSpec) string {
	t.Helper()
	if spec.Suite == "" {
		spec.Suite = "bookworm"
	}
	if spec.Variant == "" {
		spec.Variant = "minbase"
	}
	a := needVM(t)
	spec.arch = a.arch
	debianMu.Lock()
	defer debianMu.Unlock()
	dir := filepath.Join(cacheDir(), "debian")
	out := filepath.Join(dir, spec.key()+".sqsh")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if os.Geteuid() != 0 {
		testroot.SkipOrFail(t, "building a Debian root needs root (mmdebstrap --mode=root)")
	}
	if _, err := findOrInstall("mmdebstrap", "mmdebstrap"); err != nil {
		testroot.SkipOrFail(t, "mmdebstrap unavailable: %v\n  run as root: apt-get install -y mmdebstrap", err)
	}
	// The base has a lock of its own: a foreign one takes a long boot, and
	// the cache's lock would keep every other test process from its assets
	// meanwhile.
	base, err := debianBase(t, a, spec, dir)
	if err != nil {
		t.Fatalf("Debian root %s: base: %v", spec.Name, err)
	}
	err = withCacheLock(func() error {
		if _, err := os.Stat(out); err == nil {
			return nil // another process built it meanwhile
		}
		return buildDebianImage(t, spec, base, dir, out)
	})
	if err != nil {
		t.Fatalf("Debian root %s: %v", spec.Name, err)
	}
	return out
}

// baseKey names the base tarball: suite, variant, architecture and
// packages, and for a foreign architecture the second stage's script.
func (s debianSpec) baseKey() string {
	fields := append([]string{s.Suite, s.Variant}, s.Include...)
	if s.archTag() != "" {
		fields = append(fields, debStage2Init)
	}
	h := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return s.Suite + "-" + s.Variant + s.archTag() + "-" + hex.EncodeToString(h[:6])
}

// debianDpkgOpts leave out what a test root never reads.
var debianDpkgOpts = []string{
	"--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
	"--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
	"--dpkgopt=path-exclude=/usr/share/info/*",
}

// debianBase returns the cached mmdebstrap tarball of spec, making it first
// (under a lock of its own in dir).
func debianBase(t *testing.T, a *assets, spec debianSpec, dir string) (string, error) {
	out := filepath.Join(dir, spec.baseKey()+".tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	err := withFileLock(filepath.Join(dir, ".lock-"+spec.baseKey()), func() error {
		if _, err := os.Stat(out); err == nil {
			return nil // another process made it meanwhile
		}
		tmp := filepath.Join(dir, ".base-"+spec.baseKey()+".tar")
		defer os.Remove(tmp)
		var err error
		if spec.arch.native() {
			err = debianNativeBase(spec, tmp)
		} else {
			err = debianForeignBase(t, a, spec, dir, tmp)
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp, out)
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// debianNativeBase makes the host architecture's base with mmdebstrap, in a
// private mount namespace.
func debianNativeBase(spec debianSpec, tmp string) error {
	args := append([]string{"--mount", "--propagation", "private", "mmdebstrap", "--mode=root", "--quiet",
		"--variant=" + spec.Variant}, debianDpkgOpts...)
	args = append(args, "--format=tar", "--include="+strings.Join(spec.Include, ","), spec.Suite, tmp)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mmdebstrap: %w\n%s", err, b)
	}
	return nil
}

// withFileLock runs fn holding an exclusive flock on path.
func withFileLock(path string, fn func() error) error {
	lock, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return fn()
}

func buildDebianImage(t *testing.T, spec debianSpec, base, dir, out string) error {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	if b, err := exec.Command("tar", "-xpf", base, "-C", root, "--numeric-owner").CombinedOutput(); err != nil {
		return fmt.Errorf("unpack %s: %w\n%s", base, err, b)
	}
	if spec.Customize != nil {
		spec.Customize(t, root)
	}
	img := filepath.Join(tmp, "root.sqsh")
	if b, err := exec.Command("mksquashfs", append([]string{root, img, "-noappend", "-quiet", "-no-progress"}, debianComp...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("mksquashfs: %w\n%s", err, b)
	}
	fi, err := os.Stat(img)
	if err != nil {
		return err
	}
	if spec.MaxSize > 0 && fi.Size() > spec.MaxSize {
		return fmt.Errorf("the image is %d MiB, over the %d MiB allowed", fi.Size()>>20, spec.MaxSize>>20)
	}
	return os.Rename(img, out)
}
