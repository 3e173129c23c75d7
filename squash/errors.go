package squash

import "errors"

// Sentinel errors; every error returned by this package wraps one of them (or an
// errno / fs.ErrNotExist), so callers test with errors.Is.
var (
	ErrNotFile                = errors.New("not a regular file")
	ErrNotSquashfs            = errors.New("not a squashfs image")
	ErrBadSuperblock          = errors.New("bad squashfs superblock")
	ErrTruncated              = errors.New("truncated squashfs image")
	ErrUnsupportedCompression = errors.New("unsupported squashfs compression")
	ErrCorrupt                = errors.New("corrupt squashfs image")
	ErrNoInit                 = errors.New("no /sbin/init in image")
	ErrInitNotExecutable      = errors.New("/sbin/init is not executable")
	ErrInitNotRunnable        = errors.New("/sbin/init cannot run")
	ErrInitWrongArch          = errors.New("/sbin/init is for another architecture")
	ErrDanglingSymlink        = errors.New("dangling symlink")
	ErrSymlinkLoop            = errors.New("too many levels of symbolic links")
	ErrNoSpace                = errors.New("not enough free space")
	ErrShortRead              = errors.New("input ended early")
	ErrInputTooLong           = errors.New("input is longer than announced")
	ErrInputChanged           = errors.New("input changed while it was copied")
	ErrDigestMismatch         = errors.New("image does not match its signed digest")
)
