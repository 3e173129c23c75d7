package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// TestCheckRootInit reads real trees: symlinks resolve inside the root (an
// absolute link does not reach the host's file), a FIFO does not block, a
// script's missing interpreter is caught.
func TestCheckRootInit(t *testing.T) {
	testroot.NeedOpenat2(t) // checkRootInit does no check without it
	elf, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	elf = elf[:64]
	for _, c := range []struct {
		name  string
		build func(root string)
		bad   bool
	}{
		{"ELF", func(r string) { write(t, r, "sbin/init", elf, 0o755) }, false},
		{"absolute symlink inside the root", func(r string) {
			write(t, r, "bin/busybox", elf, 0o755)
			link(t, r, "/bin/busybox", "sbin/init")
		}, false},
		{"absolute symlink to what exists only on the host", func(r string) { link(t, r, "/proc/self/exe", "sbin/init") }, true},
		{"script and its shell", func(r string) {
			write(t, r, "sbin/init", []byte("#!/bin/sh\nexec foo\n"), 0o755)
			write(t, r, "bin/sh", elf, 0o755)
		}, false},
		{"script without its shell", func(r string) { write(t, r, "sbin/init", []byte("#!/bin/sh\nexec foo\n"), 0o755) }, true},
		{"script whose shell is a dangling link", func(r string) {
			write(t, r, "sbin/init", []byte("#!/bin/sh\n"), 0o755)
			link(t, r, "busybox", "bin/sh")
		}, true},
		{"zero bytes", func(r string) { write(t, r, "sbin/init", nil, 0o755) }, true},
		{"missing", func(r string) { write(t, r, "sbin/other", elf, 0o755) }, true},
		{"FIFO", func(r string) {
			os.MkdirAll(filepath.Join(r, "sbin"), 0o755)
			if err := syscall.Mkfifo(filepath.Join(r, "sbin/init"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"not executable", func(r string) { write(t, r, "sbin/init", elf, 0o644) }, true},
	} {
		root := t.TempDir()
		c.build(root)
		err := checkRootInit(root)
		if c.bad != (err != nil) {
			t.Errorf("%s: checkRootInit = %v, want bad %v", c.name, err, c.bad)
		}
		if err != nil && !errors.Is(err, ErrBadInit) {
			t.Errorf("%s: %v is not ErrBadInit", c.name, err)
		}
	}
}

func write(t *testing.T, root, rel string, body []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, root, target, rel string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestLogOpensKmsgAtFirstWarning: a boot without warnings never opens the
// kernel log; the first warning opens it and writes there.
func TestLogOpensKmsgAtFirstWarning(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	l := &Log{Console: &console}
	l.OpenKmsg(p)
	l.Infof("info %d", 1)
	if l.Kmsg != nil {
		t.Fatal("an info line opened the kernel log")
	}
	l.Warnf("warn %d", 2)
	l.Warnf("warn %d", 3)
	b, _ := os.ReadFile(p)
	if string(b) != "<4>overlayupd: warn 2\n<4>overlayupd: warn 3\n" {
		t.Errorf("kmsg got %q", b)
	}
	if !strings.Contains(console.String(), "overlayupd: info 1") || !strings.Contains(console.String(), "warning: warn 3") {
		t.Errorf("console got %q", console.String())
	}
}

// TestMkdirExistsTakesALink: a mount point a root has as a symbolic link
// (Debian's /var/lock -> /run/lock, absolute) is left alone, not followed.
func TestMkdirExistsTakesALink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "lock")
	if err := os.Symlink("/nonexistent-run/lock", link); err != nil {
		t.Fatal(err)
	}
	if err := (Op{Kind: OpMkdir, Target: link, Exists: true}).run(func(string, ...any) {}); err != nil {
		t.Errorf("mkdir of an existing link: %v", err)
	}
	if err := (Op{Kind: OpMkdir, Target: link}).run(func(string, ...any) {}); err == nil {
		t.Error("without Exists, a dangling link where a directory must be is an error")
	}
	if err := (Op{Kind: OpMkdir, Target: filepath.Join(dir, "new/sub"), Exists: true}).run(func(string, ...any) {}); err != nil || !isDir(filepath.Join(dir, "new/sub")) {
		t.Errorf("mkdir of a new directory: %v", err)
	}
}
