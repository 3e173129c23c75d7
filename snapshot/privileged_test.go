package snapshot

// Privileged tests on a real btrfs: a loopback filesystem mounted in a
// private mount namespace (the test binary re-runs itself under unshare, so
// every goroutine of the suite sees the mount and the host sees nothing).

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trampoline/conformance"
)

// onBtrfs runs fn on a fresh btrfs mounted at its top level, in a private
// mount namespace (testroot.InPrivateMountNS). Every test that uses it
// makes subvolumes, which needs cgo: a test binary built without it (make
// test-arm-unit's, cross-compiled for another architecture) skips them.
func onBtrfs(t *testing.T, fn func(t *testing.T, mnt string)) {
	t.Helper()
	if !Built {
		t.Skip("this test binary cannot make subvolumes: built without cgo (make test-arm-unit builds its test binaries so); make test runs this natively, make test-arm on the ARM kernels")
	}
	onPlainBtrfs(t, fn)
}

// onPlainBtrfs is onBtrfs for a test that makes no subvolume: it runs in
// every build.
func onPlainBtrfs(t *testing.T, fn func(t *testing.T, mnt string)) {
	t.Helper()
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "btrfs", "mount") {
		return
	}
	fn(t, testroot.MountBtrfs(t, 2<<30)) // sparse; the suite makes tens of thousands of subvolumes
}

// TestIsSubvolumeStatfs: the btrfs check on a real btrfs, through this
// architecture's statfs (on armhf, f_type is an int32 and the magic
// negative: a signed comparison says the top level is no subvolume), and
// on a filesystem that is not btrfs. It makes no subvolume, so it runs
// under make test-arm-unit too.
func TestIsSubvolumeStatfs(t *testing.T) {
	onPlainBtrfs(t, func(t *testing.T, mnt string) {
		must(t, os.Mkdir(filepath.Join(mnt, "dir"), 0o755))
		for _, c := range []struct {
			path string
			want bool
		}{{mnt, true}, {filepath.Join(mnt, "dir"), false}, {t.TempDir(), false}} {
			if got, err := IsSubvolume(c.path); got != c.want || err != nil {
				t.Errorf("IsSubvolume(%s) = %v, %v; want %v", c.path, got, err, c.want)
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// subvol makes a read-only subvolume at path holding a label file.
func subvol(t *testing.T, path, label string) {
	t.Helper()
	must(t, Create(path))
	must(t, os.WriteFile(filepath.Join(path, "label"), []byte(label), 0o644))
	must(t, SetReadOnly(path, true))
}

// TestLibraryTraps: each trap of containerd/btrfs named in the package doc,
// worked around and shown.
func TestLibraryTraps(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		src, dst := filepath.Join(mnt, "src"), filepath.Join(mnt, "dst")
		subvol(t, src, "source")
		// Argument order: Snapshot(src, dst) makes dst from src, never the reverse.
		must(t, Snapshot(src, dst, false))
		if b, err := os.ReadFile(filepath.Join(dst, "label")); err != nil || string(b) != "source" {
			t.Errorf("snapshot: dst label %q, %v; want the source's", b, err)
		}
		// Relative paths: made absolute before the library sees them.
		wd, _ := os.Getwd()
		must(t, os.Chdir(mnt))
		err := Snapshot("src", "rel", true)
		must(t, os.Chdir(wd))
		if err != nil {
			t.Errorf("snapshot with relative paths: %v", err)
		} else if info, err := GetInfo(filepath.Join(mnt, "rel")); err != nil || !info.ReadOnly {
			t.Errorf("read-only snapshot: %+v, %v", info, err)
		}
		// IsSubvolume: a plain directory, a file and a link to a subvolume are not.
		must(t, os.Mkdir(filepath.Join(mnt, "plain"), 0o755))
		must(t, os.Symlink("src", filepath.Join(mnt, "link")))
		for name, want := range map[string]bool{"src": true, "dst": true, "plain": false, "link": false} {
			if got, err := IsSubvolume(filepath.Join(mnt, name)); got != want || err != nil {
				t.Errorf("IsSubvolume(%s) = %v, %v; want %v", name, got, err, want)
			}
		}
		// Delete: by ID, on a read-only subvolume that RemoveAll cannot remove.
		if err := os.RemoveAll(src); !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) {
			t.Errorf("RemoveAll of a read-only subvolume = %v, want EROFS (the reason Delete exists)", err)
		}
		must(t, Delete(src))
		if _, err := os.Lstat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Delete: %v", err)
		}
		must(t, Delete(src)) // missing: not an error
		must(t, Delete(filepath.Join(mnt, "plain")))
		// The read-only flag, both ways.
		must(t, SetReadOnly(dst, true))
		if info, _ := GetInfo(dst); !info.ReadOnly {
			t.Error("SetReadOnly(true) did not stick")
		}
		must(t, SetReadOnly(dst, false))
		if info, _ := GetInfo(dst); info.ReadOnly {
			t.Error("SetReadOnly(false) did not stick")
		}
	})
}

// TestMountedIsNeverDeleted: the kernel deletes a mounted subvolume; Delete
// refuses, and so does a store transition (gc) that would.
func TestMountedIsNeverDeleted(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		slots := filepath.Join(mnt, "roots")
		must(t, os.Mkdir(slots, 0o755))
		subvol(t, filepath.Join(slots, "root"), "committed")
		subvol(t, filepath.Join(slots, "root.failed"), "booted")
		robase := t.TempDir()
		lower := Format{}.Lower(slots, "root.failed")
		flags, data := lower.Args()
		must(t, unix.Mount(lower.Source, robase, "", flags, data))
		defer unix.Unmount(robase, unix.MNT_DETACH)
		if err := Delete(filepath.Join(slots, "root.failed")); !errors.Is(err, ErrInUse) {
			t.Errorf("Delete of a mounted subvolume = %v, want ErrInUse", err)
		}
		st := trampoline.Open(mnt, Format{})
		if _, err := st.GC(); !errors.Is(err, trampoline.ErrInUse) {
			t.Errorf("gc deleting the booted entry = %v, want ErrInUse", err)
		}
		if _, err := os.Lstat(filepath.Join(slots, "root.failed")); err != nil {
			t.Errorf("the refused gc changed the entry: %v", err)
		}
		booted, err := Format{}.Booted(slots, mounts.Mount{FSType: "btrfs", MountPoint: robase})
		if err != nil || booted != "root.failed" {
			t.Errorf("Booted = %q, %v; want root.failed", booted, err)
		}
		// The same ID in another btrfs (another store) is not the booted one.
		other := testroot.MountBtrfs(t, 256<<20)
		otherSlots := filepath.Join(other, "roots")
		must(t, os.Mkdir(otherSlots, 0o755))
		subvol(t, filepath.Join(otherSlots, "root"), "x")
		subvol(t, filepath.Join(otherSlots, "root.failed"), "y")
		if b, err := (Format{}).Booted(otherSlots, mounts.Mount{FSType: "btrfs", MountPoint: robase}); err != nil || b != "" {
			t.Errorf("Booted on another filesystem = %q, %v; want none", b, err)
		}
		// Names change on commit; the ID does not.
		must(t, os.Rename(filepath.Join(slots, "root.failed"), filepath.Join(slots, "root.prev")))
		if booted, _ := (Format{}).Booted(slots, mounts.Mount{FSType: "btrfs", MountPoint: robase}); booted != "root.prev" {
			t.Errorf("Booted after a rename = %q, want root.prev", booted)
		}
	})
}

// TestDefaultSubvolume: 5 on a fresh filesystem, then what set-default set.
func TestDefaultSubvolume(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		id, err := DefaultID(mnt)
		testroot.SkipIfEmulatorLacks(t, "BTRFS_IOC_TREE_SEARCH", err)
		if err != nil || id != fsTreeObjectID {
			t.Fatalf("DefaultID = %d, %v; want 5", id, err)
		}
		sv := filepath.Join(mnt, "sv")
		must(t, Create(sv))
		id, err = ID(sv)
		must(t, err)
		if out, err := exec.Command("btrfs", "subvolume", "set-default", strconv.FormatUint(id, 10), mnt).CombinedOutput(); err != nil {
			t.Fatalf("set-default: %v\n%s", err, out)
		}
		if got, err := DefaultID(mnt); err != nil || got != id {
			t.Errorf("DefaultID after set-default %d = %d, %v", id, got, err)
		}
	})
}

// conformanceBackend is the btrfs backend with the suite's helpers: an entry
// is a read-only subvolume holding a label file.
type conformanceBackend struct{ trampoline.Backend }

func (b conformanceBackend) dir() string { return b.Backend.(backend).Dir }

func (b conformanceBackend) Make(name, label string) error {
	p := filepath.Join(b.dir(), name)
	if err := Create(p); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p, "label"), []byte(label), 0o644); err != nil {
		return err
	}
	return SetReadOnly(p, true)
}

func (b conformanceBackend) Label(name string) (string, error) {
	p := filepath.Join(b.dir(), name)
	if ok, err := IsSubvolume(p); err != nil || !ok {
		return "", errors.Join(errors.New(name+" is not a subvolume"), err)
	}
	l, err := os.ReadFile(filepath.Join(p, "label"))
	return string(l), err
}

// removeAll deletes a test's slot directory, subvolumes by ID, so that the
// filesystem does not fill up over the suite.
func removeAll(t *testing.T, dir string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if err := Delete(filepath.Join(dir, de.Name())); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	_ = os.Remove(dir)
}

// TestConformance runs the slot protocol's whole suite (every state × event
// × crash point) with read-only subvolume entries.
func TestConformance(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		var mu sync.Mutex
		n := 0
		conformance.Run(t, func(t *testing.T) conformance.Backend {
			mu.Lock()
			n++
			dir := filepath.Join(mnt, strconv.Itoa(n))
			mu.Unlock()
			must(t, os.Mkdir(dir, 0o755))
			t.Cleanup(func() { removeAll(t, dir) })
			return conformanceBackend{Format{}.Backend(dir)}
		})
	})
}

// TestDeleteFreesSpace: a deleted subvolume's space comes back once
// WaitCleaned returns, not only "eventually".
func TestDeleteFreesSpace(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		sv := filepath.Join(mnt, "big")
		must(t, Create(sv))
		f, err := os.Create(filepath.Join(sv, "data"))
		must(t, err)
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i*7 + 1)
		}
		for range 128 {
			_, err := f.Write(buf)
			must(t, err)
		}
		must(t, f.Close())
		free := func() int64 {
			var s unix.Statfs_t
			must(t, unix.Statfs(mnt, &s))
			return int64(s.Bavail) * int64(s.Bsize) // Bsize is an int32 on 32-bit ARM
		}
		unix.Sync()
		before := free()
		must(t, Delete(sv))
		n, err := WaitCleaned(mnt, time.Minute)
		must(t, err)
		if pending, _ := PendingDeletes(mnt); len(pending) != 0 {
			t.Errorf("after WaitCleaned: %v still pending", pending)
		}
		after := free()
		t.Logf("waited for %d deleted subvolumes; free %d MiB -> %d MiB", n, before>>20, after>>20)
		if after-before < 100<<20 {
			t.Errorf("free space %d MiB -> %d MiB after deleting 128 MiB", before>>20, after>>20)
		}
	})
}

// TestNestedSubvolumes: a subvolume inside a workspace makes Seal refuse
// (it would be lost), and Delete removes the workspace with it.
func TestNestedSubvolumes(t *testing.T) {
	onBtrfs(t, func(t *testing.T, mnt string) {
		slots := filepath.Join(mnt, "roots")
		must(t, os.Mkdir(slots, 0o755))
		ws, err := NewWorkspace(slots)
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(ws.Path, "var/lib"), 0o755))
		must(t, Create(filepath.Join(ws.Path, "var/lib/machines")))
		must(t, Create(filepath.Join(ws.Path, "var/lib/machines/deeper")))
		if err := ws.Seal(); !errors.Is(err, ErrNested) {
			t.Fatalf("Seal with a nested subvolume = %v, want ErrNested", err)
		}
		if err := ws.Abort(); err != nil {
			t.Fatalf("Abort with nested subvolumes: %v", err)
		}
		if _, err := os.Lstat(ws.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the workspace is still there: %v", err)
		}
	})
}
