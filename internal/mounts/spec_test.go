package mounts

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSpecArgs(t *testing.T) {
	for _, tc := range []struct {
		spec      Spec
		flags     uintptr
		data, str string
		loop      bool
	}{
		{Spec{"squashfs", "/roots/root.sqsh", []string{"ro", "loop"}}, unix.MS_RDONLY, "", "mount -t squashfs -o ro,loop /roots/root.sqsh", true},
		{Spec{"btrfs", "/dev/vda", []string{"ro", "subvolid=257", "nodev"}}, unix.MS_RDONLY | unix.MS_NODEV, "subvolid=257", "mount -t btrfs -o ro,subvolid=257,nodev /dev/vda", false},
		{Spec{"tmpfs", "x", nil}, 0, "", "mount -t tmpfs x", false},
		{Spec{"squashfs", "/r.sqsh", []string{"ro", "loop", "verity"}}, unix.MS_RDONLY, "", "mount -t squashfs -o ro,loop,verity /r.sqsh", true},
		{Spec{"squashfs", "/r.sqsh", []string{"ro", "loop", "verity=require"}}, unix.MS_RDONLY, "", "mount -t squashfs -o ro,loop,verity=require /r.sqsh", true},
		{Spec{"none", "/roots/root", []string{"bind", "ro"}}, unix.MS_BIND | unix.MS_RDONLY, "", "mount -t none -o bind,ro /roots/root", false},
	} {
		flags, data := tc.spec.Args()
		if flags != tc.flags || data != tc.data {
			t.Errorf("%v.Args() = %#x, %q; want %#x, %q", tc.spec, flags, data, tc.flags, tc.data)
		}
		if got := tc.spec.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
		if got := tc.spec.Verity(); got != "" && got != tc.spec.Options[2] || got == "" && strings.Contains(tc.str, "verity") {
			t.Errorf("%v.Verity() = %q", tc.spec, got)
		}
		if got := tc.spec.Loop(); got != tc.loop {
			t.Errorf("%v.Loop() = %v, want %v", tc.spec, got, tc.loop)
		}
	}
}
