package fsmode

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFromStat agrees with os.Lstat on real files of each type.
func TestFromStat(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]func(string) error{
		"file": func(p string) error { return os.WriteFile(p, nil, 0o640) },
		"dir":  func(p string) error { return os.Mkdir(p, 0o751) },
		"link": func(p string) error { return os.Symlink("x", p) },
		"fifo": func(p string) error { return unix.Mkfifo(p, 0o600) },
	}
	for name, make := range paths {
		p := filepath.Join(dir, name)
		if err := make(p); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got, want := FromStat(st.Mode), fi.Mode()&(fs.ModeType|fs.ModePerm); got != want {
			t.Errorf("%s: FromStat = %v, os.Lstat says %v", name, got, want)
		}
	}
	if got := FromStat(unix.S_IFCHR | 0o666); got != fs.ModeDevice|fs.ModeCharDevice|0o666 {
		t.Errorf("char device: %v", got)
	}
}
