package conformance_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trampoline/conformance"
)

func TestMem(t *testing.T) {
	conformance.Run(t, func(*testing.T) conformance.Backend { return conformance.NewMem(".sqsh") })
}

// fileBackend is the squashfs store's backend with test helpers: an image's
// contents are its label.
type fileBackend struct{ *trampoline.DirBackend }

func (f fileBackend) Make(name, label string) error {
	return os.WriteFile(filepath.Join(f.Dir, name), []byte(label), 0o644)
}

func (f fileBackend) Label(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(f.Dir, name))
	return string(b), err
}

// TestFileBackend runs the suite on image files. The thousands of crash
// scenarios are fsync-bound, so they run on tmpfs when /dev/shm has one (the
// renameat2 semantics are the same); TestFileBackendDisk runs the rename
// primitives on the disk under TMPDIR too.
func TestFileBackend(t *testing.T) {
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "overlayupd-conformance-"); err == nil {
			base = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	var mu sync.Mutex
	n := 0
	conformance.Run(t, func(t *testing.T) conformance.Backend {
		if base == "" {
			return fileBackend{trampoline.NewDirBackend(t.TempDir(), ".sqsh", nil)}
		}
		mu.Lock()
		n++
		dir := filepath.Join(base, strconv.Itoa(n))
		mu.Unlock()
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return fileBackend{trampoline.NewDirBackend(dir, ".sqsh", nil)}
	})
}

func TestFileBackendDisk(t *testing.T) {
	conformance.RunPrimitives(t, fileBackend{trampoline.NewDirBackend(t.TempDir(), ".sqsh", nil)})
}
