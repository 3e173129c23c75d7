package testroot

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSquashfs(t *testing.T) {
	NeedTools(t, "mksquashfs", "unsquashfs")
	tree := NewTree(t, File("etc/hostname", "test\n", 0o644), Symlink("../bin/busybox", "sbin/init"))
	owner := "0/0"
	if os.Geteuid() == 0 {
		owner = "1234/1234"
		Must(t, os.Lchown(filepath.Join(tree, "etc/hostname"), 1234, 1234))
	}
	tests := []struct {
		name      string
		opts      []SquashfsOpt
		comp      uint16 // superblock compression id
		blockSize uint32
		owner     string // of etc/hostname
	}{
		{"defaults: gzip, all root", nil, 1, 128 << 10, "0/0"},
		{"xz", []SquashfsOpt{Compression("xz")}, 4, 128 << 10, "0/0"},
		{"zstd, owners kept, 4K blocks", []SquashfsOpt{Compression("zstd"), KeepOwners(), MksquashfsArgs("-b", "4096")}, 6, 4096, owner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := Squashfs(t, tree, "", tt.opts...)
			b, err := os.ReadFile(img)
			Must(t, err)
			if len(b) < 96 || string(b[:4]) != "hsqs" {
				t.Fatalf("%s is not a squashfs image", img)
			}
			if comp, bs := binary.LittleEndian.Uint16(b[20:]), binary.LittleEndian.Uint32(b[12:]); comp != tt.comp || bs != tt.blockSize {
				t.Errorf("compression %d block size %d, want %d %d", comp, bs, tt.comp, tt.blockSize)
			}
			list, err := exec.Command("unsquashfs", "-lln", img).CombinedOutput()
			Must(t, err)
			for _, want := range []string{" " + tt.owner + " ", "squashfs-root/etc/hostname", "squashfs-root/sbin/init -> ../bin/busybox"} {
				if !strings.Contains(string(list), want) {
					t.Errorf("unsquashfs -lln lacks %q:\n%s", want, list)
				}
			}
		})
	}
	out := filepath.Join(t.TempDir(), "named.sqsh")
	if got := Squashfs(t, tree, out); got != out {
		t.Errorf("Squashfs(out %s) = %s", out, got)
	}
}

func TestExt4(t *testing.T) {
	NeedTools(t, "mkfs.ext4", "debugfs", "e2label")
	tree := NewTree(t, File("etc/hostname", "test\n", 0o644), File("sbin/init", "#!/bin/sh\n", 0o750))
	img := Ext4(t, tree, "8M", "-L", "testroot")
	if fi, err := os.Stat(img); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("image %s: %v, %v; want 8 MiB", img, fi, err)
	}
	debugfs := func(req string) string {
		out, err := exec.Command("debugfs", "-R", req, img).Output()
		Must(t, err)
		return string(out)
	}
	if got := debugfs("cat /etc/hostname"); got != "test\n" {
		t.Errorf("/etc/hostname in the image = %q", got)
	}
	if got := debugfs("stat /sbin/init"); !strings.Contains(got, "Mode:  0750") {
		t.Errorf("/sbin/init in the image is not 0750:\n%s", got)
	}
	if label, err := exec.Command("e2label", img).Output(); err != nil || strings.TrimSpace(string(label)) != "testroot" {
		t.Errorf("label %q, %v; want testroot", label, err)
	}
}

func TestBtrfs(t *testing.T) {
	NeedTools(t, "mkfs.btrfs")
	tree := NewTree(t, File("etc/hostname", "a btrfs test root\n", 0o644))
	img := Btrfs(t, tree, "128M", "-L", "testroot")
	b, err := os.ReadFile(img)
	Must(t, err)
	const sb = 0x10000 // the primary superblock
	if len(b) != 128<<20 || string(b[sb+0x40:sb+0x48]) != "_BHRfS_M" {
		t.Fatalf("%s (%d bytes) is not a 128 MiB btrfs image", img, len(b))
	}
	if label := b[sb+0x12b : sb+0x12b+256]; string(bytes.TrimRight(label, "\x00")) != "testroot" {
		t.Errorf("label %q, want testroot", bytes.TrimRight(label, "\x00"))
	}
	if !bytes.Contains(b, []byte("a btrfs test root\n")) {
		t.Errorf("the image does not hold etc/hostname's body")
	}
}
