package trampoline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// ImageSuffix is the suffix of squashfs image entries.
const ImageSuffix = ".sqsh"

// FileBackend is a slot directory of image files (the squashfs store).
type FileBackend struct {
	Dir string
	Ext string // entry suffix, usually ImageSuffix
}

var _ Backend = (*FileBackend)(nil)

// NewFileBackend returns the backend for image files with suffix in dir.
func NewFileBackend(dir, suffix string) *FileBackend { return &FileBackend{Dir: dir, Ext: suffix} }

// Suffix implements Backend.
func (f *FileBackend) Suffix() string { return f.Ext }

// List implements Backend.
func (f *FileBackend) List() ([]DirEntry, error) {
	des, err := os.ReadDir(f.Dir)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(des))
	for _, de := range des {
		e := DirEntry{Name: de.Name()}
		if fi, err := de.Info(); err == nil {
			e.Size, e.ModTime = fi.Size(), fi.ModTime()
		}
		out = append(out, e)
	}
	return out, nil
}

// Rename implements Backend with renameat2; errors are *os.LinkError, so
// errors.Is(err, os.ErrExist) reports a RENAME_NOREPLACE conflict.
func (f *FileBackend) Rename(from, to string, mode RenameMode) error {
	if err := checkNames(from, to); err != nil {
		return err
	}
	flags := uint(unix.RENAME_NOREPLACE)
	if mode == RenameExchange {
		flags = unix.RENAME_EXCHANGE
	}
	oldp, newp := filepath.Join(f.Dir, from), filepath.Join(f.Dir, to)
	if err := unix.Renameat2(unix.AT_FDCWD, oldp, unix.AT_FDCWD, newp, flags); err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldp, New: newp, Err: err}
	}
	return nil
}

// Remove implements Backend.
func (f *FileBackend) Remove(name string) error {
	if err := checkNames(name); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(f.Dir, name))
}

// SyncDir implements Backend.
func (f *FileBackend) SyncDir() error { return atomicfile.SyncDir(f.Dir) }

func checkNames(names ...string) error {
	for _, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsRune(n, '/') {
			return fmt.Errorf("bad entry name %q", n)
		}
	}
	return nil
}
