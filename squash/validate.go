package squash

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

// RealInit is the distribution's init, which the overlay execs in the new
// root: an image must have it, or it cannot boot.
const RealInit = "/sbin/init"

// MaxInitRead bounds how much of the init binary is decompressed to prove that
// its data blocks are readable.
const MaxInitRead = 256 << 20

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

// OpenImage opens path, checks it is a regular file holding a sane squashfs
// superblock whose bytes_used fits in the file.
func OpenImage(path string) (f *os.File, sb Superblock, info Info, err error) {
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
		return nil, sb, info, fmt.Errorf("%s: %w: it is a %s", path, ErrNotFile, fsmode.Kind(st.Mode()))
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

// InitError classifies a failure to resolve /sbin/init.
func InitError(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoInit, err)
}

// CheckInitMode is the decision "can the kernel exec this as init".
func CheckInitMode(target string, m fs.FileMode) error {
	if !m.IsRegular() {
		return fmt.Errorf("%w: %s is a %s, not a regular file", ErrInitNotExecutable, target, fsmode.Kind(m))
	}
	if m.Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s has mode %04o, no execute bit", ErrInitNotExecutable, target, m.Perm())
	}
	return nil
}
