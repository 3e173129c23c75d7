package bootcfg

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestKernelArch(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"aarch64", "arm64"}, {"arm64", "arm64"},
		{"armv7l", "arm"}, {"armv6l", "arm"}, {"armhf", "arm"}, {"armel", "arm"}, {"arm", "arm"},
		{"x86_64", "x86"}, {"amd64", "x86"}, {"i686", "x86"}, {"x86", "x86"},
		{"riscv64", "riscv"},
		{"mips", ""}, {"", ""}, {"ppc64le", ""},
	} {
		if got := KernelArch(tt.in); got != tt.want {
			t.Errorf("KernelArch(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCmdlineLimit is the decision as data: the bytes a file's line may have
// for each kind and kernel architecture. COMMAND_LINE_SIZE counts the NUL;
// each kind leaves room for what its boot loader adds; the Raspberry Pi
// firmware caps cmdline.txt at 1024 whatever the kernel; an unknown
// architecture takes the smallest size (1024).
func TestCmdlineLimit(t *testing.T) {
	for _, tt := range []struct {
		kind  Kind
		arch  string
		max   int
		known bool
	}{
		{RPiCmdline, "arm", 1024 - 1 - 320, true},
		{RPiCmdline, "arm64", 1024 - 1 - 320, true}, // the firmware's limit, not the kernel's 2048
		{RPiCmdline, "", 1024 - 1 - 320, false},
		{UEnv, "arm", 1024 - 1 - 256, true},
		{UEnv, "arm64", 2048 - 1 - 256, true},
		{UEnv, "", 1024 - 1 - 256, false},
		{Extlinux, "arm64", 2048 - 1 - 128, true},
		{Extlinux, "riscv", 1024 - 1 - 128, true},
		{Extlinux, "mips", 1024 - 1 - 128, false},
		{Grub, "x86", 2048 - 1 - 128, true},
		{Grub, "arm64", 2048 - 1 - 128, true},
		{Grub, "", 1024 - 1 - 128, false},
	} {
		l := CmdlineLimit(tt.kind, tt.arch)
		if l.Max != tt.max || l.Known != tt.known {
			t.Errorf("CmdlineLimit(%v, %q) = max %d known %v, want %d %v", tt.kind, tt.arch, l.Max, l.Known, tt.max, tt.known)
		}
		if err := checkLength(l.Max, l); err != nil {
			t.Errorf("%v %q: a line of exactly %d bytes refused: %v", tt.kind, tt.arch, l.Max, err)
		}
		err := checkLength(l.Max+1, l)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%v %q: a line of %d bytes: err = %v, want ErrRefused", tt.kind, tt.arch, l.Max+1, err)
		}
		// The message says the length, the limit and what to do.
		for _, want := range []string{"would be " + strconv.Itoa(l.Max+1) + " bytes", "only " + strconv.Itoa(l.Max) + " fit", "Remove parameters", "1 bytes shorter"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v %q: message %q lacks %q", tt.kind, tt.arch, err, want)
			}
		}
		if got := strings.Contains(err.Error(), "--kernel-arch"); got == tt.known {
			t.Errorf("%v %q: message mentions --kernel-arch = %v, want %v: %s", tt.kind, tt.arch, got, !tt.known, err)
		}
	}
}

// longParams returns space-separated parameters n bytes long in all.
func longParams(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("p" + strconv.Itoa(i) + "=" + strings.Repeat("x", 20))
	}
	return b.String()[:n]
}

// TestEditRefusesTooLongCmdline: an install that would make a command line
// longer than the kernel keeps is refused, with nothing written (no file
// change, no backup), in a dry run too; one that fits is written.
func TestEditRefusesTooLongCmdline(t *testing.T) {
	const added = len(" ro init=/sbin/init-overlay")
	for _, tt := range []struct {
		name    string
		kind    Kind
		file    string
		arch    string
		content func(n int) string // a file whose line is n bytes
		max     int                // the longest line that still fits
	}{
		{"cmdline.txt", RPiCmdline, "cmdline.txt", "arm64",
			func(n int) string { return "root=/dev/mmcblk0p2 " + longParams(n-len("root=/dev/mmcblk0p2 ")) + "\n" }, 703},
		{"uEnv.txt, unknown arch", UEnv, "uEnv.txt", "",
			func(n int) string { return "bootpart=0:1\ncmdline=" + longParams(n) + "\n" }, 767},
		{"extlinux, arm64", Extlinux, "extlinux.conf", "arm64",
			func(n int) string { return "LABEL l\n  KERNEL /Image\n  APPEND " + longParams(n) + "\n" }, 1919},
		{"grub, x86, with DEFAULT", Grub, "grub", "x86",
			func(n int) string {
				return "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"" + longParams(n-len(" quiet")) + "\"\n"
			}, 1919},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tt.file)
			tg := Target{Kind: tt.kind, Path: p, Arch: tt.arch}
			// Fits exactly once installed.
			writeFile(t, p, tt.content(tt.max-added), 0o644)
			if _, err := Edit(tg, true, false); err != nil {
				t.Fatalf("a line of %d bytes once installed: %v", tt.max, err)
			}
			// One byte more does not.
			tooLong := tt.content(tt.max - added + 1)
			writeFile(t, p, tooLong, 0o644)
			os.Remove(p + BackupSuffix)
			for _, dry := range []bool{true, false} {
				_, err := Edit(tg, true, dry)
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), p) ||
					!strings.Contains(err.Error(), "would be "+strconv.Itoa(tt.max+1)+" bytes") {
					t.Errorf("dry run %v: err = %v, want ErrRefused naming %s and the length %d", dry, err, p, tt.max+1)
				}
			}
			if got := readFile(t, p); got != tooLong {
				t.Errorf("refused install changed the file (%d bytes, was %d)", len(got), len(tooLong))
			}
			if _, err := os.Lstat(p + BackupSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused install left a backup: %v", err)
			}
		})
	}
}
