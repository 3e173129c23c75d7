package fsmode

import (
	"errors"
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

// TestOpenat2Retries: an EAGAIN (a lookup that raced with a rename or a
// mount) is retried, and a run of them ends with the error, not a spin.
func TestOpenat2Retries(t *testing.T) {
	defer func(f func(int, string, *unix.OpenHow) (int, error)) { openat2 = f }(openat2)
	for _, tc := range []struct {
		name    string
		eagains int
		wantErr error
	}{
		{"first try", 0, nil},
		{"two races", 2, nil},
		{"always racing", openat2Tries, unix.EAGAIN},
	} {
		calls := 0
		openat2 = func(int, string, *unix.OpenHow) (int, error) {
			calls++
			if calls <= tc.eagains {
				return -1, unix.EAGAIN
			}
			return 7, nil
		}
		fd, err := Openat2(unix.AT_FDCWD, "x", &unix.OpenHow{})
		if !errors.Is(err, tc.wantErr) || (err == nil && fd != 7) {
			t.Errorf("%s: Openat2 = %d, %v; want %v", tc.name, fd, err, tc.wantErr)
		}
		if want := min(tc.eagains+1, openat2Tries); calls != want {
			t.Errorf("%s: %d calls, want %d", tc.name, calls, want)
		}
	}
	openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOENT }
	if _, err := Openat2(unix.AT_FDCWD, "x", &unix.OpenHow{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("ENOENT: got %v", err)
	}
}
