package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestCheckInit(t *testing.T) {
	elf := []byte("\x7fELF\x02\x01\x01")
	for _, c := range []struct {
		name   string
		f      InitFile
		interp string
		bad    bool
	}{
		{"ELF binary", InitFile{Mode: 0o755, Size: 100, Head: elf}, "", false},
		{"script", InitFile{Mode: 0o755, Size: 20, Head: []byte("#!/bin/sh -e\necho\n")}, "/bin/sh", false},
		{"script with space", InitFile{Mode: 0o755, Size: 20, Head: []byte("#! /bin/busybox sh\n")}, "/bin/busybox", false},
		{"missing", InitFile{Err: fs.ErrNotExist}, "", true},
		{"I/O error (damaged image)", InitFile{Err: syscall.EIO}, "", true},
		{"zero bytes", InitFile{Mode: 0o755, Size: 0}, "", true},
		{"not executable", InitFile{Mode: 0o644, Size: 100, Head: elf}, "", true},
		{"directory", InitFile{Mode: fs.ModeDir | 0o755, Size: 4096}, "", true},
		{"FIFO", InitFile{Mode: fs.ModeNamedPipe | 0o755}, "", true},
		{"garbage", InitFile{Mode: 0o755, Size: 100, Head: []byte("\x00\x00\x00\x00")}, "", true},
		{"empty #!", InitFile{Mode: 0o755, Size: 3, Head: []byte("#!\n")}, "", true},
		// As the kernel reads it: from init's working directory, /.
		{"relative interpreter", InitFile{Mode: 0o755, Size: 10, Head: []byte("#!sh\n")}, "/sh", false},
		// Windows line ends: the kernel looks for "/bin/sh\r", which the
		// caller then does not find.
		{"CRLF", InitFile{Mode: 0o755, Size: 20, Head: []byte("#!/bin/sh\r\nexec x\r\n")}, "/bin/sh\r", false},
		{"NUL ends the name", InitFile{Mode: 0o755, Size: 20, Head: []byte("#!/nonexistent\x00\n")}, "/nonexistent", false},
	} {
		c.f.Path = "/sbin/init"
		interp, err := CheckInit(c.f)
		if c.bad != (err != nil) || interp != c.interp {
			t.Errorf("%s: CheckInit = %q, %v; want interp %q, bad %v", c.name, interp, err, c.interp, c.bad)
		}
		if err != nil && !errors.Is(err, ErrBadInit) {
			t.Errorf("%s: %v is not ErrBadInit", c.name, err)
		}
	}
}

func TestSprintf(t *testing.T) {
	for _, c := range []struct {
		format string
		a      []any
	}{
		{"plain", nil},
		{"%s over the root, writable layer %s", []any{"overlay", "tmpfs (size 50%)"}},
		{"store: %s", []any{"x"}},
		{"%v and %d", []any{errors.New("e"), 3}},
		{"%s and %d", []any{"a", 3}},
		{"100%% sure %s", []any{"yes"}},
		{"missing %s %s", []any{"one"}},
		{"extra %s", []any{"one", "two"}},
		{"trailing %", nil},
	} {
		if got, want := sprintf(c.format, c.a), fmt.Sprintf(c.format, c.a...); got != want {
			t.Errorf("sprintf(%q, %v) = %q, want %q", c.format, c.a, got, want)
		}
	}
}

func TestRescue(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"ro":                     false,
		"overlayupd.rescue=1":    true,
		"overlayupd.rescue=yes":  true,
		"overlayupd.rescue=0":    false,
		"overlayupd.rescue=junk": false,
		"overlayupd.rescue=1 overlayupd.rescue=0": false, // the last one wins, as for every key
		`x="overlayupd.rescue=1"`:                 false, // a quoted value of another key
	} {
		if got := Rescue(cmdline); got != want {
			t.Errorf("Rescue(%q) = %v, want %v", cmdline, got, want)
		}
	}
}
