// Package fsmode converts the mode of stat(2) (unix.Stat_t.Mode) to an
// fs.FileMode, for the places that stat through file descriptors of their
// own (openat2 inside a root) rather than os.Stat.
package fsmode

import (
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
