// Package fsmode serves the places that open and stat files inside a root
// through descriptors of their own rather than os.Open and os.Stat: it
// converts the mode of stat(2) (unix.Stat_t.Mode) to an fs.FileMode, and
// calls openat2, retrying the EAGAIN of a lookup that raced (Openat2), and
// names a file type in words for messages (Kind).
package fsmode

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// FromStat returns the type and permission bits of a stat(2) mode.
func FromStat(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	return mode
}

// openat2Tries bounds Openat2's retries. Each lost race needs a rename or
// a mount elsewhere on the system during the walk, so a handful is plenty;
// the bound only keeps a pathological system from spinning here.
const openat2Tries = 64

// openat2 is the system call, replaced by the tests.
var openat2 = unix.Openat2

// Openat2 is unix.Openat2 that retries EAGAIN. Why: with RESOLVE_IN_ROOT or
// RESOLVE_BENEATH, the kernel returns EAGAIN when a rename or a mount
// anywhere on the system raced with a ".." of the walk (it cannot prove
// the walk stayed inside), and asks the caller to retry. Without the retry,
// an image whose /sbin/init is a relative link was refused as corrupt, and
// a boot's lookup failed, whenever something else renamed or mounted at
// that moment.
func Openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	var err error
	for range openat2Tries {
		var fd int
		if fd, err = openat2(dirfd, path, how); !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
	return -1, err
}

// Kind names the type of a file of mode m in words, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return "file"
}
