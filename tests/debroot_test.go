package tests

// A real Debian root for the VM tests: bookworm built by mmdebstrap from
// Debian's packages, customized, and cached as a squashfs image under
// cache/debian/. The watchdog's case e boots it with systemd; the
// never-brick issue (a real root through the store) and the arm issue can
// reuse debianRoot with their own spec.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
}

func (s debianSpec) key() string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{s.Suite, s.Variant, s.Rev}, s.Include...), "\x00")))
	return s.Name + "-" + hex.EncodeToString(h[:6])
}

var debianMu sync.Mutex

// debianRoot returns the cached squashfs image of spec, building what is
// missing: the base (mmdebstrap's tarball of the suite, variant and
// packages, cached apart because it is the slow part: downloads), then the
// image (the base unpacked, customized, mksquashfs -comp xz). mmdebstrap
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
	err := withCacheLock(func() error {
		if _, err := os.Stat(out); err == nil {
			return nil // another process built it meanwhile
		}
		base, err := debianBase(spec, dir)
		if err != nil {
			return err
		}
		return buildDebianImage(t, spec, base, dir, out)
	})
	if err != nil {
		t.Fatalf("Debian root %s: %v", spec.Name, err)
	}
	return out
}

// baseKey names the base tarball: suite, variant and packages.
func (s debianSpec) baseKey() string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{s.Suite, s.Variant}, s.Include...), "\x00")))
	return s.Suite + "-" + s.Variant + "-" + hex.EncodeToString(h[:6])
}

// debianBase returns the cached mmdebstrap tarball of spec, making it first.
func debianBase(spec debianSpec, dir string) (string, error) {
	out := filepath.Join(dir, spec.baseKey()+".tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, ".base-"+spec.baseKey()+".tar")
	defer os.Remove(tmp)
	args := []string{"--mount", "--propagation", "private", "mmdebstrap", "--mode=root", "--quiet",
		"--variant=" + spec.Variant,
		// Leave out what a test root never reads.
		"--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--format=tar",
		"--include=" + strings.Join(spec.Include, ","),
		spec.Suite, tmp}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mmdebstrap: %w\n%s", err, b)
	}
	return out, os.Rename(tmp, out)
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
	if b, err := exec.Command("mksquashfs", root, img, "-noappend", "-quiet", "-no-progress", "-comp", "xz", "-processors", "1").CombinedOutput(); err != nil {
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
