package squash

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestBooted: the entry behind a plain loop mount and behind a dm-verity
// device (sysfs faked: dm-0's slave is loop3, whose backing file is the
// entry's new name after a rename).
func TestBooted(t *testing.T) {
	sys := t.TempDir()
	old := SysBlock
	SysBlock = sys
	defer func() { SysBlock = old }()
	for _, p := range []string{"loop3/loop", "dm-0/slaves/loop3", "dm-1/slaves"} {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sys, "loop3/loop/backing_file"), []byte("/overlay/store/roots/root.sqsh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ source, want string }{
		{"/dev/loop3", "root.sqsh"},
		{"/dev/dm-0", "root.sqsh"},
		{"/dev/dm-1", ""}, // a device-mapper device over no loop device
		{"/dev/dm-7", ""}, // gone
		{"/dev/loop9", ""},
		{"/dev/vda2", ""},
	}
	for _, c := range cases {
		got, err := Format{}.Booted("", mounts.Mount{Source: c.source, FSType: "squashfs"})
		if err != nil || got != c.want {
			t.Errorf("Booted(%s) = %q, %v; want %q", c.source, got, err, c.want)
		}
	}

	// With the store's slot directory: the name counts only when that
	// directory holds the loop device's very file.
	slots := t.TempDir()
	if err := os.WriteFile(filepath.Join(slots, "root.sqsh"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(slots, "root.sqsh"))
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	defer func(f func(string) (uint64, error)) { loopBackingInode = f }(loopBackingInode)
	for _, c := range []struct {
		name  string
		inode func(string) (uint64, error)
		dir   string
		want  string
	}{
		{"this store's file", func(string) (uint64, error) { return uint64(ino), nil }, slots, "root.sqsh"},
		{"another store's file of that name", func(string) (uint64, error) { return uint64(ino) + 1, nil }, slots, ""},
		{"a store without that name", func(string) (uint64, error) { return uint64(ino), nil }, t.TempDir(), ""},
		{"the loop device cannot say", func(string) (uint64, error) { return 0, os.ErrNotExist }, slots, "root.sqsh"},
	} {
		loopBackingInode = c.inode
		if got, err := (Format{}).Booted(c.dir, mounts.Mount{Source: "/dev/loop3", FSType: "squashfs"}); err != nil || got != c.want {
			t.Errorf("%s: Booted = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

// TestEntrySizeAndDigest: status lists a staged entry with the image's size
// and digest, not the file's, which carries the tree too.
func TestEntrySizeAndDigest(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, trampoline.SlotDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(3<<20 + 5)
	tmp, sum, _, err := Stage(context.Background(), bytes.NewReader(data), int64(len(data)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "root.sqsh")); err != nil {
		t.Fatal(err)
	}
	status, err := trampoline.Open(top, Format{}).Status("")
	if err != nil || len(status.Entries) != 1 {
		t.Fatalf("Status = %+v, %v", status, err)
	}
	if n := status.Entries[0].Size; n != int64(len(data)) {
		t.Errorf("status: entry size %d, want the image's %d", n, len(data))
	}
	d, err := Format{}.Digest(dir, "root.sqsh")
	if want := hex.EncodeToString(sum[:]); err != nil || d != want {
		t.Errorf("Digest = %s, %v; want %s", d, err, want)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "root.sqsh")); fi.Size() <= int64(len(data)) {
		t.Errorf("the entry file has %d bytes: no tree appended", fi.Size())
	}
}
