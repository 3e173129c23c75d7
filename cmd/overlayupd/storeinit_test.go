package main

import (
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/mounts"
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
