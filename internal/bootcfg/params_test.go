package bootcfg

import "testing"

func TestInstallParams(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "ro init=/sbin/init-overlay"},
		{"   ", "ro init=/sbin/init-overlay   "},
		{"root=/dev/sda1", "root=/dev/sda1 ro init=/sbin/init-overlay"},
		// a classic btrfs root keeps its default subvolume
		{"root=/dev/sda2 rootfstype=btrfs", "root=/dev/sda2 rootfstype=btrfs ro init=/sbin/init-overlay"},
		{"root=/dev/sda1 ro", "root=/dev/sda1 ro init=/sbin/init-overlay"},
		{"rw root=/dev/sda1", "ro root=/dev/sda1 init=/sbin/init-overlay"},
		{"init=/bin/sh ro", "init=/sbin/init-overlay ro"},
		{`"init=/bin/sh" ro init="/x y"`, "init=/sbin/init-overlay ro"},
		{"a\t\tb  ", "a\t\tb ro init=/sbin/init-overlay  "},
		{"-- x", "ro init=/sbin/init-overlay -- x"},
		{"  -- x", "  ro init=/sbin/init-overlay -- x"},
		{"ro a -- init=/bin/sh rw", "ro a init=/sbin/init-overlay -- init=/bin/sh rw"},
		{"init ro", "init ro init=/sbin/init-overlay"}, // bare `init` is not init=
		{"ro init=/sbin/init-overlay", "ro init=/sbin/init-overlay"},
	}
	for _, tt := range tests {
		got, err := installParams(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("installParams(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestInstallBtrfsStore(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"root=/dev/sda2 rootfstype=btrfs", "root=/dev/sda2 rootfstype=btrfs ro rootflags=subvolid=5 init=/sbin/init-overlay"},
		{"root=/dev/sda2 rootfstype=btrfs rootflags=subvol=@ ro", "root=/dev/sda2 rootfstype=btrfs rootflags=subvol=@ ro init=/sbin/init-overlay"},
		{"root=/dev/sda2 rootfstype=ext4", "root=/dev/sda2 rootfstype=ext4 ro init=/sbin/init-overlay"},
		{"root=/dev/sda2 ro rootflags=subvolid=5 rootfstype=btrfs init=/sbin/init-overlay", "root=/dev/sda2 ro rootflags=subvolid=5 rootfstype=btrfs init=/sbin/init-overlay"},
	} {
		if got, err := installBtrfsStore(tt.in); err != nil || got != tt.want {
			t.Errorf("installBtrfsStore(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestUninstallParams(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"root=/dev/sda1 ro", "root=/dev/sda1 ro"},
		{"root=/dev/sda1 ro init=/sbin/init-overlay", "root=/dev/sda1 ro"},
		{"  init=/sbin/init-overlay\tro ", "  ro "},
		{`a "init=/sbin/init-overlay" b`, "a b"},
		{"a init=/sbin/init b", "a init=/sbin/init b"}, // someone else's init stays
		{"a -- init=/sbin/init-overlay", "a -- init=/sbin/init-overlay"},
		{"init=/sbin/init-overlay init=/sbin/init-overlay", ""},
	}
	for _, tt := range tests {
		got, err := uninstallParams(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("uninstallParams(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestUnbalancedQuoteRefused(t *testing.T) {
	for _, f := range []editFunc{installParams, uninstallParams} {
		if _, err := f(`a "b c`); err == nil {
			t.Errorf("got nil error for an unbalanced quote, want one")
		}
	}
}
