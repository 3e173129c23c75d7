package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/testroot"
)

// TestApplyOnReadOnlyStore runs apply against a store on a read-only mount,
// as /overlay/store is on a device: apply remounts it read-write for the
// change and read-only after. The mounts happen in a private mount namespace
// (the test re-runs itself under unshare), never on the host.
func TestApplyOnReadOnlyStore(t *testing.T) {
	t.Parallel()
	if testroot.InPrivateMountNS(t) {
		readOnlyStoreInNamespace(t)
	}
}

func readOnlyStoreInNamespace(t *testing.T) {
	e := testEnv(t)
	top, _ := newStore(t, e)
	// Move the store onto its own tmpfs, then make that read-only.
	mp := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mp, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(mp, unix.MNT_DETACH)
	if out, err := exec.Command("cp", "-a", top+"/.", mp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if err := unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount ro: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mp, "probe"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("the store is not read-only (write: %v): the test would prove nothing", err)
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", mp, bootable().squashfs(t)); err != nil {
		t.Fatalf("apply on a read-only store: %v\n%s", err, out)
	}
	if _, err := os.Stat(slotPath(mp, "root.try-1.sqsh")); err != nil {
		t.Errorf("not staged: %v", err)
	}
	ms, err := mounts.Read()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := mounts.Find(ms, mp); !ok || !m.ReadOnly() && !mounts.HasOption(m.SuperOpts, "ro") {
		t.Errorf("the store is writable after apply: %+v", m)
	}
}
