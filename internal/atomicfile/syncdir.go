//go:build !overlayupd_nodirsync

package atomicfile

import (
	"fmt"
	"os"
)

// SyncDir fsyncs a directory so that renames, creations and removals in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// DirSyncs reports whether SyncDir fsyncs: false only in the flush-replay
// test's broken build (nodirsync.go).
const DirSyncs = true
