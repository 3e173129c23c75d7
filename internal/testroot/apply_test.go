package testroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// entry is what one path of a built tree holds: its type and permission
// bits, and the body of a file or the target of a symlink.
type entry struct {
	mode fs.FileMode
	data string
}

func lstat(t *testing.T, root, p string) (entry, bool) {
	t.Helper()
	full := filepath.Join(root, p)
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return entry{}, false
	}
	Must(t, err)
	e := entry{mode: fi.Mode()}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.data, err = os.Readlink(full)
	case fi.Mode().IsRegular():
		var b []byte
		b, err = os.ReadFile(full)
		e.data = string(b)
	}
	Must(t, err)
	return e, true
}

func TestApply(t *testing.T) {
	old := syscall.Umask(0o077) // modes are exact whatever the umask
	defer syscall.Umask(old)
	tree := NewTree(t,
		File("etc/hostname", "test\n", 0o644),
		File("/sbin/init", "#!/bin/sh\n", 0o755),
		File("usr/bin/setuid", "x", fs.ModeSetuid|0o755),
		Dir("data/rw", 0o700),
		Symlink("../bin/busybox", "sbin/halt"),
		Symlink("/nothere", "etc/dangling"),
		File("etc/replaced", "old", 0o644),
		Symlink("hostname", "etc/replaced"), // replaces the file
		File("etc/through", "new", 0o600),
		Symlink("hostname", "etc/link"),
		File("etc/link", "not through the link", 0o640), // replaces the link
		File("tmp/gone/x", "", 0o644),
		Remove("tmp/gone"),
		Chmod("etc/hostname", 0o600),
		Fifo("run/fifo", 0o620),
		Files(map[string]string{"opt/": "", "opt/a": "A", "opt/l": "->a"}, 0o750),
	)
	tests := []struct {
		path string
		want entry
	}{
		{".", entry{mode: fs.ModeDir | 0o755}},   // the top too
		{"etc", entry{mode: fs.ModeDir | 0o755}}, // parents are 0755 whatever the umask
		{"etc/hostname", entry{0o600, "test\n"}},
		{"sbin/init", entry{0o755, "#!/bin/sh\n"}},
		{"usr/bin/setuid", entry{fs.ModeSetuid | 0o755, "x"}},
		{"data/rw", entry{mode: fs.ModeDir | 0o700}},
		{"sbin/halt", entry{fs.ModeSymlink | 0o777, "../bin/busybox"}},
		{"etc/dangling", entry{fs.ModeSymlink | 0o777, "/nothere"}},
		{"etc/replaced", entry{fs.ModeSymlink | 0o777, "hostname"}},
		{"etc/through", entry{0o600, "new"}},
		{"etc/link", entry{0o640, "not through the link"}},
		{"tmp", entry{mode: fs.ModeDir | 0o755}},
		{"run/fifo", entry{mode: fs.ModeNamedPipe | 0o620}},
		{"opt", entry{mode: fs.ModeDir | 0o755}},
		{"opt/a", entry{0o750, "A"}},
		{"opt/l", entry{fs.ModeSymlink | 0o777, "a"}},
	}
	for _, tt := range tests {
		got, ok := lstat(t, tree, tt.path)
		if !ok || got != tt.want {
			t.Errorf("%s = %v %q (exists %v), want %v %q", tt.path, got.mode, got.data, ok, tt.want.mode, tt.want.data)
		}
	}
	if _, ok := lstat(t, tree, "tmp/gone"); ok {
		t.Errorf("tmp/gone exists after Remove")
	}
}

// No applier writes outside its tree, whatever symlinks the tree holds.
func TestApplyStaysInside(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name string
		link string // the target of the symlink sbin
		a    Applier
	}{
		{"file under an absolute symlink", outside, File("sbin/init", "x", 0o755)},
		{"file under a climbing symlink", "../../../../../../../../" + outside, File("sbin/init", "x", 0o755)},
		{"dir under an absolute symlink", outside, Dir("sbin/d", 0o755)},
		{"symlink under an absolute symlink", outside, Symlink("x", "sbin/l")},
		{"fifo under an absolute symlink", outside, Fifo("sbin/p", 0o600)},
		{"chmod through an absolute symlink", outside, Chmod("sbin", 0o700)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ApplyDir(t.TempDir(), Symlink(tc.link, "sbin"), tc.a)
			if err == nil {
				t.Errorf("applied through sbin -> %s, want an error", tc.link)
			}
			t.Logf("error: %v", err)
		})
	}
	if des, _ := os.ReadDir(outside); len(des) != 0 {
		t.Errorf("written outside the tree: %v", des)
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() == 0o700 {
		t.Errorf("chmod reached outside the tree")
	}
}

func TestEntry(t *testing.T) {
	tree := NewTree(t, Entry("d/", "", 0o600), Entry("l", "->d", 0o600), Entry("f", "body", 0o600), Entry("arrow", "-x>", 0o600))
	want := map[string]entry{
		"d":     {mode: fs.ModeDir | 0o755},
		"l":     {fs.ModeSymlink | 0o777, "d"},
		"f":     {0o600, "body"},
		"arrow": {0o600, "-x>"},
	}
	for p, w := range want {
		if got, _ := lstat(t, tree, p); got != w {
			t.Errorf("%s = %v %q, want %v %q", p, got.mode, got.data, w.mode, w.data)
		}
	}
}

func TestBusybox(t *testing.T) {
	NeedTools(t, BusyboxPath)
	tree := NewTree(t, File("bin/ls", "mine", 0o755), Busybox("sh", "ls", "usr/bin/awk"))
	want := map[string]entry{
		"bin/sh":      {fs.ModeSymlink | 0o777, "busybox"},
		"bin/ls":      {0o755, "mine"}, // left alone
		"usr/bin/awk": {fs.ModeSymlink | 0o777, "../../bin/busybox"},
	}
	for p, w := range want {
		if got, _ := lstat(t, tree, p); got != w {
			t.Errorf("%s = %v %q, want %v %q", p, got.mode, got.data, w.mode, w.data)
		}
	}
	if fi, err := os.Stat(filepath.Join(tree, "usr/bin/awk")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("usr/bin/awk does not resolve to bin/busybox 0755: %v %v", fi, err)
	}

	all := NewTree(t, Busybox())
	for _, p := range []string{"bin/sh", "bin/mount", "sbin/switch_root"} {
		if got, ok := lstat(t, all, p); !ok || filepath.Join(filepath.Dir(p), got.data) != "bin/busybox" {
			t.Errorf("every applet: %s = %v %q (exists %v), want a link to bin/busybox", p, got.mode, got.data, ok)
		}
	}
	for _, p := range []string{"sbin/init", "linuxrc"} {
		if _, ok := lstat(t, all, p); ok {
			t.Errorf("every applet: %s linked, want it left to the tree's own init", p)
		}
	}
}

func TestCharDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of a character device needs root")
	}
	tree := NewTree(t, CharDevice("dev/null", 0o666, 1, 3))
	fi, err := os.Lstat(filepath.Join(tree, "dev/null"))
	Must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != fs.ModeDevice|fs.ModeCharDevice|0o666 || st.Rdev != 1<<8|3 {
		t.Errorf("dev/null = %v rdev %#x, want a 0666 char device 1:3", fi.Mode(), st.Rdev)
	}
}
