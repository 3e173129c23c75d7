package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/snapshot"
)

// TestBtrfsTrust: on a btrfs store, a signed image is unpacked from the
// copy whose signature was checked; persist signs its root with the device
// key; a root changed after it was signed shows in status, and persist
// refuses to build on it unless --insecure.
func TestBtrfsTrust(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs", "mksquashfs") {
		return
	}
	k1 := newSigner(t)
	e := testEnv(t)
	v1Dir, v1 := bootable().withVersion("1").withKeys(k1).dirAndImage(t)
	k1.sign(t, v1)
	top := testroot.MountBtrfs(t, 1<<30)
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--btrfs", "--image", v1, "--trust", writeText(t, "k1.pub", k1.pub)); err != nil {
		t.Fatalf("store init --btrfs --trust: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(top, KeysDir, "device.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("btrfs store's device key: %v, %v; want mode 0600", fi, err)
	}
	e.trustRoot = v1Dir

	unsigned := bootable().withVersion("2").squashfs(t)
	before := btrfsSlots(t, top)
	if _, err := run(t, e, "overlayupd", "apply", "--store", top, unsigned); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("apply of an unsigned image: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("a refused apply changed the slots: %q, was %q", got, before)
	}

	// persist from the signed root: the new root is the device's, signed.
	upper := t.TempDir()
	testroot.Must(t, os.MkdirAll(filepath.Join(upper, "etc"), 0o755))
	testroot.Must(t, os.WriteFile(filepath.Join(upper, "etc/tuned"), []byte("yes\n"), 0o644))
	if out, err := run(t, e, "overlayupd", "persist", "--store", top, "--upper", upper); err != nil {
		t.Fatalf("persist: %v\n%s", err, out)
	}
	out, err := run(t, e, "overlayupd", "status", "--store", top)
	testroot.Must(t, err)
	for _, w := range []string{"root                   store init, signed by key " + k1.id, "root.try-1             made on this device by persist, signed by the device key"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}

	// The committed root changed behind the store's back: its record no
	// longer holds, and nothing new is built on it.
	root := slotPath(top, "root")
	testroot.Must(t, snapshot.SetReadOnly(root, false))
	testroot.Must(t, os.WriteFile(filepath.Join(root, "etc/implant"), []byte("x\n"), 0o644))
	testroot.Must(t, snapshot.SetReadOnly(root, true))
	out, _ = run(t, e, "overlayupd", "status", "--store", top)
	if !strings.Contains(out, "record does NOT hold: its files changed after it was signed") {
		t.Errorf("status of a changed root:\n%s", out)
	}
	before = btrfsSlots(t, top)
	_, err = run(t, e, "overlayupd", "persist", "--store", top, "--upper", upper)
	if err == nil || !strings.Contains(err.Error(), "its files changed after it was signed") || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("persist from a changed root: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("a refused persist changed the slots: %q, was %q", got, before)
	}
	if out, err := run(t, e, "overlayupd", "persist", "--store", top, "--upper", upper, "--insecure"); err != nil {
		t.Fatalf("persist --insecure: %v\n%s", err, out)
	}
	out, _ = run(t, e, "overlayupd", "status", "--store", top)
	if !strings.Contains(out, "INSECURE: persist --insecure") {
		t.Errorf("status after persist --insecure:\n%s", out)
	}

	// A signed image on a btrfs store is unpacked from its checked copy,
	// and the copy is gone afterwards.
	v2 := bootable().withVersion("2").withKeys(k1).squashfs(t)
	k1.sign(t, v2)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, v2); err != nil {
		t.Fatalf("apply of a signed image: %v\n%s", err, out)
	}
	for _, n := range btrfsSlots(t, top) {
		if strings.HasPrefix(n, ".stage") {
			t.Errorf("leftover %s after apply", n)
		}
	}
	out, _ = run(t, e, "overlayupd", "status", "--store", top)
	if !strings.Contains(out, "apply, signed by key "+k1.id+", version 12+2") {
		t.Errorf("status after a signed apply:\n%s", out)
	}

	// A signed digest is checked the same way: a byte changed after
	// signing is refused with the slots unchanged and no copy left; the
	// image it states is unpacked from its checked copy.
	v3 := bootable().withVersion("3").withKeys(k1).squashfs(t)
	changed := copyFile(t, v3, "changed.sqsh")
	k1.signDigest(t, e, changed, changed)
	flipPadding(t, changed)
	before = btrfsSlots(t, top)
	if _, err := run(t, e, "overlayupd", "apply", "--store", top, changed); err == nil || !strings.Contains(err.Error(), "dm-verity root hash") {
		t.Errorf("apply of an image changed after its digest was signed: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("a refused apply changed the slots: %q, was %q", got, before)
	}
	k1.signDigest(t, e, v3, v3)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, v3); err != nil || !strings.Contains(out, "signed digest") || !strings.Contains(out, fileSum(t, v3)) {
		t.Fatalf("apply of an image with a signed digest: %v\n%s", err, out)
	}
	for _, n := range btrfsSlots(t, top) {
		if strings.HasPrefix(n, ".stage") {
			t.Errorf("leftover %s after apply", n)
		}
	}
}

// TestUpdateTrust: with keys trusted, update builds on a root whose record
// holds and signs its result with the device key; from a root changed
// behind the store's back it refuses, and the store stays as it was.
func TestUpdateTrust(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	trustIn(t, e.trustRoot, newSigner(t))
	out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "echo v2 > /etc/version")
	if err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	out, _ = run(t, e, "overlayupd", "status", "--store", top)
	if !strings.Contains(out, "root.try-1             made on this device by update, signed by the device key") {
		t.Errorf("status after update:\n%s", out)
	}
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	root := slotPath(top, "root")
	testroot.Must(t, snapshot.SetReadOnly(root, false))
	testroot.Must(t, os.WriteFile(filepath.Join(root, "etc/version"), []byte("tampered\n"), 0o644))
	testroot.Must(t, snapshot.SetReadOnly(root, true))
	before := btrfsSlots(t, top)
	_, err = run(t, e, "overlayupd", "update", "--store", top, "--", "true")
	if err == nil || !strings.Contains(err.Error(), "root does not hold its signed record") || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("update from a changed root: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, before) {
		t.Errorf("a refused update changed the slots: %q, was %q", got, before)
	}
}
