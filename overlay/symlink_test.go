package overlay

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSymlinkIn(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "real/rw"), ""},
		{filepath.Join(dir, "link/rw"), filepath.Join(dir, "link")},
		{filepath.Join(dir, "link"), filepath.Join(dir, "link")},
		{filepath.Join(dir, "missing/rw"), ""},
	} {
		if got := symlinkIn(tc.path); got != tc.want {
			t.Errorf("symlinkIn(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
