package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

// btrfsStore makes a btrfs store with store init --btrfs --image on a fresh
// loop-mounted btrfs; call it inside testroot.InPrivateMountNS.
func btrfsStore(t *testing.T, e *env) (top string) {
	t.Helper()
	top = testroot.MountBtrfs(t, 1<<30)
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--btrfs", "--image", bootable().squashfs(t)); err != nil {
		t.Fatalf("store init --btrfs: %v\n%s", err, out)
	}
	return top
}

func btrfsSlots(t *testing.T, top string) []string {
	t.Helper()
	var out []string
	for _, n := range slots(t, top) {
		if !strings.HasSuffix(n, ".reason") {
			out = append(out, n)
		}
	}
	return out
}

// TestBtrfsStoreLifecycle: store init, apply, trial, commit, rollback and
// gc on a btrfs store, entries read-only subvolumes, status with their IDs.
func TestBtrfsStoreLifecycle(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "mksquashfs") {
		return
	}
	e := testEnv(t)
	top := btrfsStore(t, e)
	marker, err := os.ReadFile(filepath.Join(top, trampoline.MarkerFile))
	if err != nil || !strings.Contains(string(marker), "format=btrfs") {
		t.Fatalf("marker %q, %v; want format=btrfs", marker, err)
	}
	root := slotPath(top, "root")
	if info, err := snapshot.GetInfo(root); err != nil || !info.ReadOnly {
		t.Fatalf("root: %+v, %v; want a read-only subvolume", info, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "sbin/init")); err != nil || !strings.HasPrefix(string(b), "#!/bin/sh") {
		t.Errorf("root/sbin/init: %q, %v; want the image's", b, err)
	}

	out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t))
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root", "root.try-1"}) {
		t.Fatalf("after apply: %q, want root and root.try-1 (no leftovers)", got)
	}
	trial := bootTrialOf(t, e, top)
	out, err = run(t, e, "overlayupd", "status", "--store", top, "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var st struct {
		Store struct {
			Format  string `json:"format"`
			Entries []struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
				ID   uint64 `json:"subvolume_id"`
			} `json:"entries"`
		} `json:"store"`
	}
	mustJSON(t, out, &st)
	if st.Store.Format != "btrfs" || len(st.Store.Entries) != 2 {
		t.Fatalf("status: %s", out)
	}
	for _, en := range st.Store.Entries {
		id, _ := snapshot.ID(slotPath(top, en.Name))
		if en.Kind != "subvolume" || en.ID == 0 || en.ID != id {
			t.Errorf("status entry %+v, want kind subvolume and ID %d", en, id)
		}
	}
	out, err = run(t, e, "overlayupd", "commit", "--store", top, "--health-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "committed root (was the trial "+trial+")") {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root", "root.prev"}) {
		t.Fatalf("after commit: %q", got)
	}
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	// A failed trial, then gc: the subvolume goes, by ID, read-only as it is.
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t)); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	bootTrialOf(t, e, top)
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback of the trial: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "gc", "--store", top); err != nil || !strings.Contains(out, "root.failed") {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root", "root.prev"}) {
		t.Fatalf("after gc: %q", got)
	}
}

// bootTrialOf plays the trampoline on the btrfs store.
func bootTrialOf(t *testing.T, e *env, top string) string {
	t.Helper()
	plan, err := trampoline.Open(top, snapshot.Format{}).Boot()
	if err != nil || !plan.Trial {
		t.Fatalf("boot: %+v, %v; want a trial", plan, err)
	}
	fakeBooted(e, plan.Boot.Name)
	return plan.Boot.Name
}

// TestBtrfsBootedIsNeverDeleted: gc and rollback refuse to delete the
// subvolume that is mounted as the running root, and change nothing.
func TestBtrfsBootedIsNeverDeleted(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "mksquashfs") {
		return
	}
	e := testEnv(t)
	top := btrfsStore(t, e)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t)); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	trial := bootTrialOf(t, e, top)
	// The system runs the trial: its subvolume is mounted, as the
	// trampoline's lower layer is.
	robase := t.TempDir()
	testroot.Must(t, unix.Mount(slotPath(top, trial), robase, "", unix.MS_BIND, ""))
	defer unix.Unmount(robase, unix.MNT_DETACH)
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out) // renames only: allowed
	}
	before := btrfsSlots(t, top)
	out, err := run(t, e, "overlayupd", "gc", "--store", top)
	if !errors.Is(err, trampoline.ErrInUse) || !strings.Contains(err.Error(), "root.failed") {
		t.Fatalf("gc deleting the running root: %v\n%s; want a refusal", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("the refused gc changed the store: %q -> %q", before, got)
	}
	if _, err := os.Stat(filepath.Join(robase, "sbin/init")); err != nil {
		t.Errorf("the running root lost its files: %v", err)
	}

	// rollback too: with a new trial, cancelling it would discard the old
	// root.failed, which this system still runs. Refused, nothing changed.
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t)); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	bootTrialOf(t, e, top)
	before = btrfsSlots(t, top)
	if _, err := run(t, e, "overlayupd", "rollback", "--store", top); !errors.Is(err, trampoline.ErrInUse) {
		t.Fatalf("rollback discarding the running root: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("the refused rollback changed the store: %q -> %q", before, got)
	}
}

// TestBtrfsStoreInitRefusals: not btrfs, not the top level, a default
// subvolume other than 5; and --from copies a tree.
func TestBtrfsStoreInit(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "btrfs", "mksquashfs") {
		return
	}
	e := testEnv(t)
	img := bootable().squashfs(t)
	mnt := testroot.MountBtrfs(t, 1<<30)
	sub := filepath.Join(mnt, "sub")
	testroot.Must(t, snapshot.Create(sub))
	for _, c := range []struct {
		name, dir, want string
	}{
		{"not btrfs", t.TempDir(), "not on btrfs"},
		{"a subvolume, not the top level", sub, "not the top level"},
	} {
		if out, err := run(t, e, "overlayupd", "store", "init", c.dir, "--btrfs", "--image", img); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\n%s; want %q", c.name, err, out, c.want)
		}
	}
	id, _ := snapshot.ID(sub)
	if out, err := exec.Command("btrfs", "subvolume", "set-default", strconv.FormatUint(id, 10), mnt).CombinedOutput(); err != nil {
		t.Fatalf("set-default: %v\n%s", err, out)
	}
	if _, err := run(t, e, "overlayupd", "store", "init", mnt, "--btrfs", "--image", img); err == nil || !strings.Contains(err.Error(), "set-default 5") {
		t.Errorf("default subvolume not 5: %v; want the fix named", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, trampoline.MarkerFile)); err == nil {
		t.Error("a refused init wrote the marker")
	}
	top := testroot.MountBtrfs(t, 1<<30)
	tree := testroot.NewTree(t, bootable().appliers()...)
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--btrfs", "--from", tree); err != nil {
		t.Fatalf("store init --from: %v\n%s", err, out)
	}
	if got, want := fileSum(t, slotPath(top, "root/data/noise")), fileSum(t, filepath.Join(tree, "data/noise")); got != want {
		t.Error("--from did not copy the tree")
	}
	// A tree without /sbin/init is refused, and leaves no subvolume behind.
	top2 := testroot.MountBtrfs(t, 1<<30)
	noInit := testroot.NewTree(t, testroot.File("etc/x", "x", 0o644))
	if _, err := run(t, e, "overlayupd", "store", "init", top2, "--btrfs", "--from", noInit); err == nil || !strings.Contains(err.Error(), "sbin/init") {
		t.Errorf("--from a tree without /sbin/init: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top2); len(got) != 0 {
		t.Errorf("a refused init left %q", got)
	}
}

// TestBtrfsApplyStoreEntry: a squashfs store's entry (image, tree,
// trailer) applied to a btrfs store is unpacked from its image and
// reported with the image's sha256 and size, not the whole file's.
func TestBtrfsApplyStoreEntry(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "mksquashfs") {
		return
	}
	e := testEnv(t)
	top := btrfsStore(t, e)
	sq, img := newStore(t, e)
	entry := filepath.Join(t.TempDir(), "root.sqsh")
	b, err := os.ReadFile(slotPath(sq, "root.sqsh"))
	testroot.Must(t, err)
	testroot.Must(t, os.WriteFile(entry, b, 0o644))
	out, err := run(t, e, "overlayupd", "apply", "--json", "--store", top, entry)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	var r struct {
		SHA256 string
		Size   int64
	}
	mustJSON(t, out, &r)
	fi, err := os.Stat(img)
	testroot.Must(t, err)
	if r.SHA256 != fileSum(t, img) || r.Size != fi.Size() {
		t.Errorf("staged %d bytes, sha256 %s; the image is %d bytes, %s", r.Size, r.SHA256, fi.Size(), fileSum(t, img))
	}
}
