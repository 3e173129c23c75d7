package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestPersist: changes made through an overlay of the committed root are
// folded into a new root, staged as a trial; committing it schedules the
// persistent layer's emptying, and only then.
func TestPersist(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	layer := t.TempDir()
	testroot.Must(t, unix.Mount("tmpfs", layer, "tmpfs", 0, "size=64m"))
	defer unix.Unmount(layer, unix.MNT_DETACH)
	upper, work, merged := filepath.Join(layer, "data"), filepath.Join(layer, "work"), t.TempDir()
	testroot.Must(t, os.Mkdir(upper, 0o755))
	testroot.Must(t, os.Mkdir(work, 0o755))
	testroot.Must(t, unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+slotPath(top, "root")+",upperdir="+upper+",workdir="+work))
	defer unix.Unmount(merged, unix.MNT_DETACH)
	testroot.Must(t, os.WriteFile(filepath.Join(merged, "etc/version"), []byte("tuned\n"), 0o644))
	testroot.Must(t, os.WriteFile(filepath.Join(merged, "etc/new.conf"), []byte("new\n"), 0o600))
	testroot.Must(t, os.Remove(filepath.Join(merged, "data/noise")))

	out, err := run(t, e, "overlayupd", "persist", "--store", top, "--upper", upper)
	if err != nil || !strings.Contains(out, "into root.try-1") {
		t.Fatalf("persist: %v\n%s", err, out)
	}
	try := slotPath(top, "root.try-1")
	if b, _ := os.ReadFile(filepath.Join(try, "etc/version")); string(b) != "tuned\n" {
		t.Errorf("the new root's /etc/version = %q, want the overlay's", b)
	}
	if fi, err := os.Stat(filepath.Join(try, "etc/new.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the new file: %v, %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(try, "data/noise")); err == nil {
		t.Error("a file deleted in the overlay is still in the new root")
	}
	if b, _ := os.ReadFile(slotPath(top, "root/etc/version")); string(b) != "v1\n" {
		t.Errorf("the committed root changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(upper, "etc/version")); err != nil {
		t.Errorf("persist touched the layer before any commit: %v", err)
	}

	// A persistent layer's pending record: commit of that root turns it
	// into the boot's order to empty the layer.
	st := trampoline.Open(top, snapshot.Format{})
	id, err := snapshot.Format{}.EntryUUID(st.SlotDir, "root.try-1")
	testroot.Must(t, err)
	testroot.Must(t, st.NotePersist(id))
	bootTrialOf(t, e, top)
	if out, err := run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", t.TempDir()); err != nil || !strings.Contains(out, "the next boot starts the layer empty") {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Contains(got, trampoline.ClearLayerFile) {
		t.Errorf("after the commit: %q, want %s", got, trampoline.ClearLayerFile)
	}
}

func TestPersistRefusals(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	if _, err := run(t, e, "overlayupd", "persist", "--store", top, "--upper", t.TempDir()); err == nil || !strings.Contains(err.Error(), "needs a btrfs store") {
		t.Errorf("persist on a squashfs store: %v", err)
	}
}
