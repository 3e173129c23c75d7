package trampoline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// DirBackend is a slot directory whose entries are directory entries of one
// filesystem: image files (the squashfs store) or subvolumes (the btrfs
// store). Both rename with renameat2; they differ only in their suffix and in
// how an entry is deleted.
type DirBackend struct {
	Dir string
	Ext string // the entry suffix: ".sqsh" for images, "" for subvolumes
	// RemoveEntry deletes the entry at path; a missing one is not an error.
	// nil means os.RemoveAll, right for files and plain directories.
	RemoveEntry func(path string) error
	// Describe, if set, fills in what List reports of an entry beyond its
	// name and time (a subvolume's kind and ID).
	Describe func(path string, e *DirEntry)
}

var _ Backend = (*DirBackend)(nil)

// NewDirBackend returns the backend for the entries with suffix in dir,
// deleted by remove (nil: os.RemoveAll).
func NewDirBackend(dir, suffix string, remove func(path string) error) *DirBackend {
	return &DirBackend{Dir: dir, Ext: suffix, RemoveEntry: remove}
}

// Suffix implements Backend.
func (d *DirBackend) Suffix() string { return d.Ext }

// List implements Backend. Size is the file size of an image; a directory
// entry (a subvolume) reports none, which says nothing about its contents.
func (d *DirBackend) List() ([]DirEntry, error) {
	des, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(des))
	for _, de := range des {
		e := DirEntry{Name: de.Name(), Kind: "other"}
		if fi, err := de.Info(); err == nil {
			e.ModTime = fi.ModTime()
			switch {
			case fi.Mode().IsRegular():
				e.Kind, e.Size = "image", fi.Size()
			case fi.IsDir():
				e.Kind = "directory"
			}
		}
		if d.Describe != nil {
			d.Describe(filepath.Join(d.Dir, e.Name), &e)
		}
		out = append(out, e)
	}
	return out, nil
}

// Rename implements Backend with renameat2; errors are *os.LinkError, so
// errors.Is(err, os.ErrExist) reports a RENAME_NOREPLACE conflict.
func (d *DirBackend) Rename(from, to string, mode RenameMode) error {
	if err := checkNames(from, to); err != nil {
		return err
	}
	flags := uint(unix.RENAME_NOREPLACE)
	if mode == RenameExchange {
		flags = unix.RENAME_EXCHANGE
	}
	oldp, newp := filepath.Join(d.Dir, from), filepath.Join(d.Dir, to)
	if err := unix.Renameat2(unix.AT_FDCWD, oldp, unix.AT_FDCWD, newp, flags); err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldp, New: newp, Err: err}
	}
	return nil
}

// Remove implements Backend.
func (d *DirBackend) Remove(name string) error {
	if err := checkNames(name); err != nil {
		return err
	}
	if d.RemoveEntry != nil {
		return d.RemoveEntry(filepath.Join(d.Dir, name))
	}
	return os.RemoveAll(filepath.Join(d.Dir, name))
}

// SyncDir implements Backend.
func (d *DirBackend) SyncDir() error { return atomicfile.SyncDir(d.Dir) }

func checkNames(names ...string) error {
	for _, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsRune(n, '/') {
			return fmt.Errorf("bad entry name %q", n)
		}
	}
	return nil
}
