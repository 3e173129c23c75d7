// Package atomicfile owns durable file replacement: write a temp file in the same
// directory, fsync it, rename it over the target, fsync the directory.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data so that after a crash the file holds either
// the old or the new contents, never a mix, and once it returns nil the new
// contents survive a power cut.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), perm)
}

// WriteFrom is WriteFile for contents read from r until EOF (a binary to
// install, a stream): the same temp file, fsync, rename, fsync of the directory.
func WriteFrom(path string, r io.Reader, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The temp file's name means nothing once it is removed, and the
	// errors of its *os.File already carry it: name the target, once.
	bare := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == tmp {
			return pe.Err
		}
		return err
	}
	if _, err = io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", path, bare(err))
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", path, bare(err))
	}
	// Why: the contents must be on disk before the rename makes them visible, or a
	// crash can leave the new name pointing at an empty or partial file.
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, bare(err))
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, bare(err))
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	// Why: the rename lives in the directory; without this fsync a power cut can
	// bring back the old name after we reported success.
	return SyncDir(dir)
}
