package squash

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// RealInit is the distribution's init, which the overlay execs in the new
// root: an image must have it, or it cannot boot.
const RealInit = "/sbin/init"

// maxInitRead bounds how much of the init binary is decompressed to prove that
// its data blocks are readable.
const maxInitRead = 256 << 20

// headerRead is how much of the file is read for format detection: enough to
// recognise ext4 (1 KiB + 58) and btrfs (64 KiB + 72) when it is not squashfs.
const headerRead = 0x10048

// Info describes a validated image.
type Info struct {
	Size        int64 // file size in bytes (bytes_used rounded up by padding)
	BytesUsed   int64 // bytes_used from the superblock
	Compression string
	BlockSize   uint32
	Inodes      uint32
	ModTime     time.Time
	InitTarget  string // what /sbin/init resolves to inside the image, e.g. "/bin/busybox"
	CheckedBy   string // "reader" (in-process go-diskfs) or "mount" (kernel loop mount)
	Meta        Meta   // the root's version and trusted keys, read on the way
}

// validateByMount is ValidateByMount; a variable so tests can simulate a host
// without root.
var validateByMount = ValidateByMount

// Validate checks that path is a squashfs image this device can boot: magic,
// superblock, bytes_used within the file, inode and directory tables readable
// (the whole tree is walked), and /sbin/init present, a regular executable file
// after following symlinks inside the image, with readable data. lz4 and lzo
// images are checked with ValidateByMount (see the package doc). It reads only;
// every error names path and wraps a sentinel of this package.
func Validate(path string) (Info, error) {
	f, sb, info, err := openAndParse(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	switch sb.Compression {
	case compLzma:
		return Info{}, fmt.Errorf("%s: %w: the kernel cannot mount lzma squashfs; rebuild it with mksquashfs -comp xz, zstd or gzip", path, ErrUnsupportedCompression)
	case compLz4, compLzo:
		return validateByMount(path)
	}
	info.CheckedBy = "reader"
	if err := readTree(f, info.Size, &info); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// openAndParse opens path, checks it is a regular file holding a sane squashfs
// superblock whose bytes_used fits in the file.
func openAndParse(path string) (f *os.File, sb Superblock, info Info, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, sb, info, fmt.Errorf("cannot open image: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, sb, info, fmt.Errorf("cannot stat image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, sb, info, fmt.Errorf("%s: %w: it is a %s", path, ErrNotFile, describeMode(st.Mode()))
	}
	if st.Size() == 0 {
		return nil, sb, info, fmt.Errorf("%s: %w: the file is empty", path, ErrNotSquashfs)
	}
	head := make([]byte, min(st.Size(), headerRead))
	if _, err = io.ReadFull(f, head); err != nil {
		return nil, sb, info, fmt.Errorf("%s: read superblock: %w", path, err)
	}
	if sb, err = ParseSuperblock(head); err != nil {
		return nil, sb, info, fmt.Errorf("%s: %w", path, err)
	}
	if int64(sb.BytesUsed) > st.Size() || int64(sb.BytesUsed) < 0 {
		return nil, sb, info, fmt.Errorf("%s: %w: superblock says %d bytes, file has %d", path, ErrTruncated, sb.BytesUsed, st.Size())
	}
	info = Info{Size: st.Size(), BytesUsed: int64(sb.BytesUsed), Compression: sb.CompressionName(),
		BlockSize: sb.BlockSize, Inodes: sb.Inodes, ModTime: sb.Time()}
	return f, sb, info, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// readTree reads the image with go-diskfs: the whole directory tree (which reads
// every directory and inode), then /sbin/init. go-diskfs is not hardened against
// hostile input, so a panic in it is turned into ErrCorrupt.
func readTree(f *os.File, size int64, info *Info) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the squashfs reader failed: %v", ErrCorrupt, r)
		}
	}()
	sfs, err := squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := walkTree(sfs, "."); err != nil {
		return err
	}
	target, n, err := resolve(diskfsLookup(sfs), RealInit)
	if err != nil {
		return initError(err)
	}
	info.InitTarget = "/" + target
	if err := checkInitMode(info.InitTarget, n.mode); err != nil {
		return err
	}
	r, err := sfs.Open(target)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrCorrupt, info.InitTarget, err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(r, maxInitRead)); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrCorrupt, info.InitTarget, err)
	}
	info.Meta, err = diskfsMeta(sfs)
	return err
}

// initError classifies a failure to resolve /sbin/init.
func initError(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoInit, err)
}

// checkInitMode is the decision "can the kernel exec this as init".
func checkInitMode(target string, m fs.FileMode) error {
	if !m.IsRegular() {
		return fmt.Errorf("%w: %s is a %s, not a regular file", ErrInitNotExecutable, target, describeMode(m))
	}
	if m.Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s has mode %04o, no execute bit", ErrInitNotExecutable, target, m.Perm())
	}
	return nil
}

// walkTree reads every directory of the image; entries are hydrated from their
// inodes as they are listed, so this reads the inode table too.
func walkTree(sfs *squashfs.FileSystem, dir string) error {
	des, err := sfs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: read directory /%s: %w", ErrCorrupt, dir, err)
	}
	for _, d := range des {
		if !d.IsDir() {
			continue
		}
		if err := walkTree(sfs, path.Join(dir, d.Name())); err != nil {
			return err
		}
	}
	return nil
}

// diskfsLookup adapts a go-diskfs image to resolve.
func diskfsLookup(sfs *squashfs.FileSystem) lookupFunc {
	return func(p string) (node, error) {
		dir, base := path.Split(p)
		dir = path.Clean("./" + dir)
		des, err := sfs.ReadDir(dir)
		if err != nil {
			return node{}, fmt.Errorf("%w: read directory /%s: %w", ErrCorrupt, dir, err)
		}
		for _, d := range des {
			if d.Name() != base {
				continue
			}
			fi, err := d.Info()
			if err != nil {
				return node{}, fmt.Errorf("%w: stat /%s: %w", ErrCorrupt, p, err)
			}
			n := node{mode: fi.Mode()}
			if st, ok := fi.Sys().(*squashfs.StatT); ok {
				n.target = st.LinkTarget
			}
			return n, nil
		}
		return node{}, fs.ErrNotExist
	}
}
