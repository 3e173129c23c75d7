package testroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// An Applier makes one change to a tree. It works through an *os.Root, so
// no change lands outside the tree: a path whose parent is a symlink
// pointing out of it (an absolute one, or one climbing above the top) is
// an error, not a write on the host. The idea is continuity's fstest.Apply.
type Applier interface {
	Apply(root *os.Root) error
}

// ApplyFunc turns a function into an Applier.
type ApplyFunc func(root *os.Root) error

// Apply calls f.
func (f ApplyFunc) Apply(root *os.Root) error { return f(root) }

// Group applies appliers in order, stopping at the first error.
func Group(appliers ...Applier) Applier {
	return ApplyFunc(func(root *os.Root) error {
		for _, a := range appliers {
			if err := a.Apply(root); err != nil {
				return err
			}
		}
		return nil
	})
}

// ApplyDir applies appliers in order to the tree at dir, creating dir
// first. It is Apply for code that returns errors instead of failing a test.
func ApplyDir(dir string, appliers ...Applier) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := root.Close(); err == nil {
			err = cerr
		}
	}()
	return Group(appliers...).Apply(root)
}

// Apply applies appliers in order to the tree at dir, or fails t.
func Apply(t testing.TB, dir string, appliers ...Applier) {
	t.Helper()
	if err := ApplyDir(dir, appliers...); err != nil {
		t.Fatalf("build tree %s: %v", dir, err)
	}
}

// NewTree makes a tree from appliers in a new directory of t's temp dir.
// Its top is 0755, as a root filesystem's / is.
func NewTree(t testing.TB, appliers ...Applier) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	Must(t, os.Mkdir(dir, 0o755))
	Must(t, os.Chmod(dir, 0o755))
	Apply(t, dir, appliers...)
	return dir
}

// clean makes p relative to the tree: "/etc/x", "etc/x" and "etc//x" are
// the same entry.
func clean(p string) string {
	return path.Clean(strings.TrimPrefix(path.Clean("/"+p), "/"))
}

// parent makes p's missing parents, 0755 whatever the umask.
func parent(root *os.Root, p string) error {
	return mkdirAll(root, path.Dir(p), 0o755)
}

// mkdirAll makes the directory p with exactly mode if it is missing, and
// its missing parents with 0755, so a tree does not depend on the umask.
func mkdirAll(root *os.Root, p string, mode os.FileMode) error {
	if p == "." {
		return nil
	}
	fi, err := root.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s: not a directory", p)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := parent(root, p); err != nil {
		return err
	}
	if err := root.Mkdir(p, 0o700); err != nil {
		return err
	}
	return root.Chmod(p, mode)
}

// replace clears the way for a new non-directory entry at p: whatever is
// there, unless a directory, is removed, so a file never writes through
// an old symlink.
func replace(root *os.Root, p string) error {
	if err := parent(root, p); err != nil {
		return err
	}
	fi, err := root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: is a directory", p)
	}
	return root.Remove(p)
}

// File writes body to p with exactly mode (the umask does not apply),
// making the missing parents (0755) and replacing any file or symlink already there.
func File(p, body string, mode os.FileMode) Applier {
	return ApplyFunc(func(root *os.Root) error {
		p := clean(p)
		if err := replace(root, p); err != nil {
			return err
		}
		if err := root.WriteFile(p, []byte(body), mode.Perm()); err != nil {
			return err
		}
		return root.Chmod(p, mode)
	})
}

// CopyFile copies the host file src to p with exactly mode.
func CopyFile(src, p string, mode os.FileMode) Applier {
	return ApplyFunc(func(root *os.Root) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return File(p, string(b), mode).Apply(root)
	})
}

// Dir makes the directory p and its missing parents (0755); p gets
// exactly mode, also when it was there already.
func Dir(p string, mode os.FileMode) Applier {
	return ApplyFunc(func(root *os.Root) error {
		p := clean(p)
		if err := mkdirAll(root, p, mode); err != nil {
			return err
		}
		return root.Chmod(p, mode)
	})
}

// Symlink makes p a symlink to target, as os.Symlink(target, p) would,
// making the parents and replacing any file or symlink already there.
// target is stored as given: absolute, relative, dangling or climbing.
func Symlink(target, p string) Applier {
	return ApplyFunc(func(root *os.Root) error {
		p := clean(p)
		if err := replace(root, p); err != nil {
			return err
		}
		return root.Symlink(target, p)
	})
}

// Chmod sets the mode of p (following a symlink inside the tree).
func Chmod(p string, mode os.FileMode) Applier {
	return ApplyFunc(func(root *os.Root) error { return root.Chmod(clean(p), mode) })
}

// Remove removes p and anything under it; a missing p is no error.
func Remove(p string) Applier {
	return ApplyFunc(func(root *os.Root) error { return root.RemoveAll(clean(p)) })
}

// Fifo makes a named pipe at p with mode.
func Fifo(p string, mode os.FileMode) Applier {
	return mknod(p, unix.S_IFIFO|uint32(mode.Perm()), 0)
}

// CharDevice makes a character device node at p (needs root).
func CharDevice(p string, mode os.FileMode, major, minor uint32) Applier {
	return mknod(p, unix.S_IFCHR|uint32(mode.Perm()), unix.Mkdev(major, minor))
}

// mknod makes a node in p's parent, opened through the root, so the node
// cannot land outside the tree either.
func mknod(p string, mode uint32, dev uint64) Applier {
	return ApplyFunc(func(root *os.Root) (err error) {
		p := clean(p)
		if err := replace(root, p); err != nil {
			return err
		}
		dir, err := root.Open(path.Dir(p))
		if err != nil {
			return err
		}
		defer dir.Close()
		if err := unix.Mknodat(int(dir.Fd()), path.Base(p), mode, int(dev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: p, Err: err}
		}
		return root.Chmod(p, os.FileMode(mode&0o777))
	})
}

// Entry is one entry of the map shorthand for trees: a name ending in "/"
// is a directory (0755), a body starting with "->" a symlink to the rest,
// anything else a file of mode.
func Entry(name, body string, mode os.FileMode) Applier {
	switch {
	case strings.HasSuffix(name, "/"):
		return Dir(name, 0o755)
	case strings.HasPrefix(body, "->"):
		return Symlink(body[2:], name)
	}
	return File(name, body, mode)
}

// Files applies the map shorthand (see Entry), files with mode, in name
// order so the result does not depend on map order.
func Files(files map[string]string, mode os.FileMode) Applier {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	appliers := make([]Applier, len(names))
	for i, name := range names {
		appliers[i] = Entry(name, files[name], mode)
	}
	return Group(appliers...)
}

// relLink is the relative symlink target from the link at p to the entry
// at target (both tree paths): it resolves the same on the host and in
// the booted root.
func relLink(target, p string) string {
	rel, err := filepath.Rel(path.Dir(clean(p)), clean(target))
	if err != nil {
		return "/" + clean(target)
	}
	return rel
}
