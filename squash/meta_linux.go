package squash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

// TreeMeta reads the metadata of the root tree at dir (a subvolume, a
// mounted image), symlinks resolved as if dir were "/": an absolute link in
// the tree never leads out of it.
func TreeMeta(dir string) (Meta, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Meta{}, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	m, err := ReadMetaFrom(MetaSource{
		ReadFile: func(p string) ([]byte, error) {
			f, err := openInRoot(root, p, unix.O_RDONLY)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return nil, err
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("/%s is a %s, not a file", p, fsmode.Kind(fi.Mode()))
			}
			return ReadLimited(f, p)
		},
		ReadDir: func(p string) ([]string, error) {
			f, err := openInRoot(root, p, unix.O_RDONLY|unix.O_DIRECTORY)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return f.Readdirnames(-1)
		},
	})
	if err != nil {
		return Meta{}, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// openInRoot opens p under root as if root were "/" (openat2
// RESOLVE_IN_ROOT); a missing file is fs.ErrNotExist.
func openInRoot(root int, p string, flags int) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NONBLOCK), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := fsmode.Openat2(root, p, &how)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("open /%s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}
