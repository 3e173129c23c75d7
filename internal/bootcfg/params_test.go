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
		if got, err := install(tt.in, Options{BtrfsStore: true}); err != nil || got != tt.want {
			t.Errorf("install(%q, btrfs store) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestInstallStoreDevice: install --store-device points root= at the store's
// partition, with its filesystem type, and waits for it.
func TestInstallStoreDevice(t *testing.T) {
	pi := "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait"
	for _, tt := range []struct {
		name string
		in   string
		o    Options
		want string
	}{
		{"pi card, ext4 store on p3", pi, Options{Root: "PARTUUID=6c586e13-03", RootFSType: "ext4"},
			"console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-03 rootfstype=ext4 fsck.repair=yes rootwait ro init=/sbin/init-overlay"},
		{"pi card, btrfs store on p3", pi, Options{Root: "PARTUUID=6c586e13-03", RootFSType: "btrfs", BtrfsStore: true},
			"console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-03 rootfstype=btrfs fsck.repair=yes rootwait ro rootflags=subvolid=5 init=/sbin/init-overlay"},
		{"no root= yet, no rootwait", "console=ttyS0", Options{Root: "PARTUUID=ab-01", RootFSType: "ext4"},
			"console=ttyS0 root=PARTUUID=ab-01 rootfstype=ext4 rootwait ro init=/sbin/init-overlay"},
		{"two root=: one is left, ours", "root=/dev/sda1 quiet root=/dev/sda2", Options{Root: "PARTUUID=ab-03"},
			"root=PARTUUID=ab-03 quiet rootwait ro init=/sbin/init-overlay"},
		{"the store's type replaces btrfs", "root=/dev/sda2 rootfstype=btrfs", Options{Root: "PARTUUID=ab-03", RootFSType: "ext4", BtrfsStore: true},
			"root=PARTUUID=ab-03 rootfstype=ext4 rootwait ro init=/sbin/init-overlay"},
		{"after -- is init's", "root=/dev/sda1 -- root=x", Options{Root: "PARTUUID=ab-03"},
			"root=PARTUUID=ab-03 rootwait ro init=/sbin/init-overlay -- root=x"},
		{"idempotent", "root=PARTUUID=ab-03 rootfstype=ext4 rootwait ro init=/sbin/init-overlay", Options{Root: "PARTUUID=ab-03", RootFSType: "ext4"},
			"root=PARTUUID=ab-03 rootfstype=ext4 rootwait ro init=/sbin/init-overlay"},
	} {
		if got, err := install(tt.in, tt.o); err != nil || got != tt.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tt.name, got, err, tt.want)
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
