package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mountns"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/testroot"
)

func TestNotMountPoint(t *testing.T) {
	ms := []mounts.Mount{
		{MountPoint: "/", Source: "/dev/sda2", FSType: "ext4"},
		{MountPoint: "/mnt/card", Source: "/dev/sdb2", FSType: "ext4"},
		{MountPoint: "/mnt/card/boot", Source: "/dev/sdb1", FSType: "vfat"},
	}
	for _, c := range []struct{ dir, want string }{
		{"/mnt/card", ""},
		{"/", ""},
		{"/mnt/cards", "onto the filesystem mounted at / (/dev/sda2, ext4)"},
		{"/mnt/card/store", "onto the filesystem mounted at /mnt/card (/dev/sdb2"},
		{"/mnt/card/boot/x", "mounted at /mnt/card/boot (/dev/sdb1, vfat)"},
	} {
		got := notMountPoint(c.dir, ms)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("notMountPoint(%s) = %q, want %q", c.dir, got, c.want)
		}
	}
}

// TestStoreInitFull: store init on a filesystem too small for the
// trampoline says the filesystem is full and what to do, not only the
// write's errno.
func TestStoreInitFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs in a private mount namespace")
	}
	e := testEnv(t)
	big := filepath.Join(t.TempDir(), "overlayupd")
	testroot.Must(t, os.WriteFile(big, append([]byte("#!/bin/sh\n"), make([]byte, 1<<20)...), 0o755))
	e.executable = func() (string, error) { return big, nil }
	img := bootable().squashfs(t)
	top := t.TempDir()
	var out string
	var err error
	// The trampoline is written on this goroutine, the namespace's thread.
	testroot.Must(t, mountns.InPrivate(func() error {
		if err := unix.Mount("tmpfs", top, "tmpfs", 0, "size=256k"); err != nil {
			return err
		}
		out, err = run(t, e, "overlayupd", "store", "init", top, "--image", img)
		return nil
	}))
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "the filesystem of "+top+" is full") {
		t.Errorf("store init on a full filesystem: %v\n%s", err, out)
	}
}
