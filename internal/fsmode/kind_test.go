package fsmode

import (
	"io/fs"
	"testing"
)

// TestKind: each file type gets its own word; the squash checks, install
// and the CLI all name file types with it.
func TestKind(t *testing.T) {
	for _, c := range []struct {
		m    fs.FileMode
		want string
	}{
		{0o644, "file"},
		{fs.ModeDir | 0o755, "directory"},
		{fs.ModeSymlink | 0o777, "symbolic link"},
		{fs.ModeNamedPipe | 0o600, "FIFO"},
		{fs.ModeDevice | 0o600, "device"},
		{fs.ModeDevice | fs.ModeCharDevice | 0o600, "device"},
		{fs.ModeSocket | 0o600, "socket"},
	} {
		if got := Kind(c.m); got != c.want {
			t.Errorf("Kind(%v) = %q, want %q", c.m, got, c.want)
		}
	}
}
