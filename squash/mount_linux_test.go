package squash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/internal/mountns"
	"github.com/overlayupd/overlayupd/internal/testroot"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mounts (runs in a private mount namespace)")
	}
}

// mountedIn reports whether target appears in a mountinfo file.
func mountedIn(t *testing.T, mountinfo, target string) bool {
	t.Helper()
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == target {
			return true
		}
	}
	return false
}

// waitDetached waits for autoclear to release a loop device.
func waitDetached(dev string) error {
	backing := fmt.Sprintf("/sys/block/%s/loop/backing_file", filepath.Base(dev))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(backing); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	b, _ := os.ReadFile(backing)
	return fmt.Errorf("%s still attached to %q", dev, bytes.TrimSpace(b))
}

// bootable is a minimal bootable root: /sbin/init -> ../bin/busybox.
var bootable = map[string]string{"bin/busybox": "#!/bin/sh\necho busybox\n", "sbin/init": "->../bin/busybox"}

// TestValidateByMountNotRoot: without root, lz4 and lzo images cannot be
// checked and are refused with the fix, before anything is mounted.
func TestValidateByMountNotRoot(t *testing.T) {
	testroot.NeedTools(t, "mksquashfs")
	img := testroot.Squashfs(t, testroot.NewTree(t, testroot.Files(bootable, 0o755)), "", testroot.Compression("lz4"))
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	_, err := ValidateByMount(img, nil)
	if !errors.Is(err, ErrUnsupportedCompression) || !strings.Contains(err.Error(), "mksquashfs -comp zstd") {
		t.Fatalf("ValidateByMount as non-root = %v, want ErrUnsupportedCompression with the fix", err)
	}
}

func TestMount(t *testing.T) {
	needRoot(t)
	for _, comp := range []string{"gzip", "zstd", "lz4"} {
		t.Run(comp, func(t *testing.T) {
			img := testroot.Squashfs(t, testroot.NewTree(t, testroot.Files(bootable, 0o755)), "", testroot.Compression(comp), testroot.KeepOwners())
			target := t.TempDir()
			var dev string
			err := mountns.InPrivate(func() error {
				var err error
				if dev, err = loop.Mount(img, target, "squashfs", unix.MS_RDONLY, ""); err != nil {
					return err
				}
				mounted := mountedIn(t, "/proc/thread-self/mountinfo", target)
				onHost := mountedIn(t, fmt.Sprintf("/proc/%d/mountinfo", os.Getpid()), target)
				got, rerr := os.ReadFile(filepath.Join(target, "sbin/init"))
				werr := os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
				if err := unix.Unmount(target, 0); err != nil {
					return fmt.Errorf("unmount: %w", err)
				}
				switch {
				case !mounted || onHost:
					return fmt.Errorf("mounted in namespace %v, on host %v; want true, false", mounted, onHost)
				case rerr != nil || string(got) != bootable["bin/busybox"]:
					return fmt.Errorf("read /sbin/init through the mount: %q, %v", got, rerr)
				case !errors.Is(werr, unix.EROFS):
					return fmt.Errorf("write into the mount = %v, want EROFS", werr)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ro, _ := os.ReadFile(fmt.Sprintf("/sys/block/%s/ro", filepath.Base(dev)))
			if err := waitDetached(dev); err != nil {
				t.Fatalf("after unmount: %v", err)
			}
			t.Logf("%s was %s, ro=%s", img, dev, bytes.TrimSpace(ro))
		})
	}
}

func TestMountErrors(t *testing.T) {
	needRoot(t)
	garbage := filepath.Join(t.TempDir(), "garbage.sqsh")
	if err := os.WriteFile(garbage, randomBytes(1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.sqsh")
	if err := os.Symlink(garbage, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo.sqsh")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, image, target string
		want                error
	}{
		{"not squashfs", garbage, t.TempDir(), unix.EINVAL},
		{"missing image", filepath.Join(t.TempDir(), "nope"), t.TempDir(), os.ErrNotExist},
		{"missing target", garbage, filepath.Join(t.TempDir(), "nope"), unix.ENOENT},
		{"a FIFO, never opened for reading", fifo, t.TempDir(), loop.ErrNotFile},
		{"a directory", t.TempDir(), t.TempDir(), loop.ErrNotFile},
		{"a link (never followed)", link, t.TempDir(), unix.ELOOP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mountns.InPrivate(func() error { _, err := loop.Mount(tc.image, tc.target, "squashfs", unix.MS_RDONLY, ""); return err })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Mount = %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
			if leaked := loopsBackedBy(t, tc.image); len(leaked) > 0 {
				t.Fatalf("loop devices left attached: %v", leaked)
			}
		})
	}
}

// loopsBackedBy lists loop devices whose backing file is image.
func loopsBackedBy(t *testing.T, image string) []string {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == image {
			out = append(out, f)
		}
	}
	return out
}

// TestStageENOSPC fills a real 4 MiB tmpfs, mounted in a private namespace.
func TestStageENOSPC(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	err := mountns.InPrivate(func() error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
			return err
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		if err := os.WriteFile(filepath.Join(dir, "root"), []byte("committed"), 0o644); err != nil {
			return err
		}
		before, _ := os.ReadDir(dir)
		for _, size := range []int64{-1, 8 << 20} {
			_, _, _, err := Stage(context.Background(), bytes.NewReader(randomBytes(8<<20)), size, dir, nil)
			if !errors.Is(err, ErrNoSpace) {
				return fmt.Errorf("Stage(size %d) into a full tmpfs = %v, want ErrNoSpace", size, err)
			}
			t.Logf("size %d: %v", size, err)
		}
		after, _ := os.ReadDir(dir)
		if len(after) != len(before) {
			return fmt.Errorf("store changed: %v -> %v", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
