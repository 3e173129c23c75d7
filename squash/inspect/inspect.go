// Package inspect reads a squashfs root image in-process, with
// github.com/diskfs/go-diskfs, to prove it bootable before it is staged: the
// superblock, the inode and directory tables (the whole tree is walked), and
// the data of the file /sbin/init resolves to. Images of a compression that
// reader cannot handle (lz4, lzo) go to squash.ValidateByMount, a kernel loop
// mount.
//
// Why a package of its own: go-diskfs brings decompressors (zstd, xz, lz4,
// lzo) whose package initialisation and code pages the PID-1 binary
// (cmd/init-overlay) must not pay for. Package squash, which that binary
// imports for its Format, links none of them; only the command line does,
// through this package.
package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"

	"github.com/overlayupd/overlayupd/squash"
)

// validateByMount is squash.ValidateByMount; a variable so tests can see
// which path an image took.
var validateByMount = squash.ValidateByMount

// Validate checks that path is a squashfs image this device can boot: magic,
// superblock, bytes_used within the file, inode and directory tables readable
// (the whole tree is walked), and /sbin/init present, a regular executable file
// after following symlinks inside the image, with readable data. lz4 and lzo
// images are checked with squash.ValidateByMount (see package squash's doc). It
// reads only; every error names path and wraps a sentinel of package squash.
//
// machines, when not nil, are the ELF machines the device runs
// (squash.KernelMachines): an init built for another, a script without its
// interpreter, a dynamic binary without its loader is refused
// (squash.CheckRunnable).
func Validate(path string, machines []uint16) (squash.Info, error) {
	f, sb, info, err := squash.OpenImage(path)
	if err != nil {
		return squash.Info{}, err
	}
	defer f.Close()
	switch {
	case !sb.KernelMountable():
		return squash.Info{}, fmt.Errorf("%s: %w: the kernel cannot mount %s squashfs; rebuild it with mksquashfs -comp xz, zstd or gzip", path, squash.ErrUnsupportedCompression, info.Compression)
	case !sb.GoReadable():
		return validateByMount(path, machines)
	}
	info.CheckedBy = "reader"
	if err := readTree(f, info.Size, &info, machines); err != nil {
		return squash.Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// readTree reads the image with go-diskfs: the whole directory tree (which reads
// every directory and inode), then /sbin/init. go-diskfs is not hardened against
// hostile input, so a panic in it is turned into squash.ErrCorrupt.
func readTree(f *os.File, size int64, info *squash.Info, machines []uint16) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the squashfs reader failed: %v", squash.ErrCorrupt, r)
		}
	}()
	sfs, err := squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", squash.ErrCorrupt, err)
	}
	if err := walkTree(sfs, ".", map[uint32]bool{}, 0); err != nil {
		return err
	}
	target, n, err := squash.Resolve(diskfsLookup(sfs), squash.RealInit)
	if err != nil {
		return squash.InitError(err)
	}
	info.InitTarget = "/" + target
	if err := squash.CheckInitMode(info.InitTarget, n.Mode); err != nil {
		return err
	}
	r, err := sfs.Open(target)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", squash.ErrCorrupt, info.InitTarget, err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(r, squash.MaxInitRead)); err != nil {
		return fmt.Errorf("%w: read %s: %w", squash.ErrCorrupt, info.InitTarget, err)
	}
	if err := squash.CheckRunnable(func(p string) ([]byte, error) { return head(sfs, p) }, info.InitTarget, machines); err != nil {
		return err
	}
	info.Meta, err = diskfsMeta(sfs)
	return err
}

// head reads the first squash.HeadSize bytes of p inside the image,
// following symlinks inside it, and reads the rest of it too (up to
// squash.MaxInitRead): p is a file the boot runs (init's interpreter, its
// dynamic loader), and a damaged data block past the head (a
// decompression error) would fail that boot.
func head(sfs *squashfs.FileSystem, p string) ([]byte, error) {
	target, n, err := squash.Resolve(diskfsLookup(sfs), p)
	if err != nil {
		if errors.Is(err, squash.ErrDanglingSymlink) {
			return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
		}
		return nil, err
	}
	if !n.Mode.IsRegular() {
		return nil, fmt.Errorf("/%s is not a regular file: %w", target, fs.ErrNotExist)
	}
	r, err := sfs.Open(target)
	if err != nil {
		return nil, fmt.Errorf("%w: open /%s: %w", squash.ErrCorrupt, target, err)
	}
	defer r.Close()
	b := make([]byte, squash.HeadSize)
	k, err := io.ReadFull(r, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: read /%s: %w", squash.ErrCorrupt, target, err)
	}
	if k == len(b) {
		if _, err := io.Copy(io.Discard, io.LimitReader(r, squash.MaxInitRead)); err != nil {
			return nil, fmt.Errorf("read /%s: %w", target, err) // CheckRunnable says it is corrupt
		}
	}
	return b[:k], nil
}

// walkTree reads every directory of the image; entries are hydrated from their
// inodes as they are listed, so this reads the inode table too.
//
// seen holds the inode numbers of the directories walked, depth how deep
// dir is. Why both: a crafted image whose directory entry points back at
// an ancestor made the walk loop for ever (apply hung with the store
// locked); a directory has no hard links, so one met twice is damage, and
// the depth bound (a path the kernel could not even name) stops what the
// inode numbers might not.
func walkTree(sfs *squashfs.FileSystem, dir string, seen map[uint32]bool, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: directories nested more than %d deep (at /%.200s)", squash.ErrCorrupt, maxDepth, dir)
	}
	des, err := sfs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: read directory /%s: %w", squash.ErrCorrupt, dir, err)
	}
	for _, d := range des {
		if !d.IsDir() {
			continue
		}
		p := path.Join(dir, d.Name())
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*squashfs.StatT); ok {
				if seen[st.Inode] {
					return fmt.Errorf("%w: directory loop: /%.200s is a directory met before (inode %d)", squash.ErrCorrupt, p, st.Inode)
				}
				seen[st.Inode] = true
			}
		}
		if err := walkTree(sfs, p, seen, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// maxDepth bounds how deep walkTree goes: far deeper than any root
// filesystem nests (Debian's deepest paths are some 15 levels), and small
// enough that a walk to it, whose every level reads the path from the
// root again, ends in a second or so.
const maxDepth = 512

// diskfsLookup adapts a go-diskfs image to resolve.
func diskfsLookup(sfs *squashfs.FileSystem) squash.LookupFunc {
	return func(p string) (squash.Node, error) {
		dir, base := path.Split(p)
		dir = path.Clean("./" + dir)
		des, err := sfs.ReadDir(dir)
		if err != nil {
			return squash.Node{}, fmt.Errorf("%w: read directory /%s: %w", squash.ErrCorrupt, dir, err)
		}
		for _, d := range des {
			if d.Name() != base {
				continue
			}
			fi, err := d.Info()
			if err != nil {
				return squash.Node{}, fmt.Errorf("%w: stat /%s: %w", squash.ErrCorrupt, p, err)
			}
			n := squash.Node{Mode: fi.Mode()}
			if st, ok := fi.Sys().(*squashfs.StatT); ok {
				n.Target = st.LinkTarget
			}
			return n, nil
		}
		return squash.Node{}, fs.ErrNotExist
	}
}
