package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mountns"
)

// TestWriteFileFull: on a full filesystem the error is ENOSPC, names the
// target once (not the temp file, twice), and no temp file is left.
func TestWriteFileFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs in a private mount namespace")
	}
	dir := t.TempDir()
	var werr error
	var left []os.DirEntry
	err := mountns.InPrivate(func() error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
			return err
		}
		werr = WriteFile(filepath.Join(dir, "init-overlay"), bytes.Repeat([]byte("x"), 1<<20), 0o755)
		var err error
		left, err = os.ReadDir(dir)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "init-overlay")
	if !errors.Is(werr, unix.ENOSPC) || strings.Count(werr.Error(), target) != 1 || strings.Contains(werr.Error(), ".tmp-") {
		t.Errorf("err = %v; want ENOSPC naming %s once, no temp file", werr, target)
	}
	if len(left) != 0 {
		t.Errorf("left %d entries behind", len(left))
	}
}
