package squash

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"

	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/internal/mountns"
)

// geteuid is os.Geteuid; tests replace it to see the refusal a non-root user gets.
var geteuid = os.Geteuid

// ValidateByMount checks an image by letting the kernel mount it: read-only
// loop mount in a private mount namespace, walk the whole tree (lstat of every
// entry), resolve /sbin/init inside the image (openat2 RESOLVE_IN_ROOT, so
// absolute symlinks stay inside), check it is an executable regular file and read
// its data. Needs root. inspect.Validate calls it for lz4 and lzo images; callers may use
// it for any image as a deeper check.
func ValidateByMount(path string, machines []uint16) (Info, error) {
	f, sb, info, err := OpenImage(path)
	if err != nil {
		return Info{}, err
	}
	f.Close()
	if !sb.KernelMountable() {
		return Info{}, fmt.Errorf("%s: %w: the kernel cannot mount lzma squashfs", path, ErrUnsupportedCompression)
	}
	if geteuid() != 0 {
		return Info{}, fmt.Errorf("%s: %w: %s images can only be checked by a loop mount, which needs root; run as root or rebuild the image with mksquashfs -comp zstd (or xz, gzip)",
			path, ErrUnsupportedCompression, info.Compression)
	}
	dir, err := os.MkdirTemp("", "overlayupd-check-")
	if err != nil {
		return Info{}, fmt.Errorf("%s: create mount point: %w", path, err)
	}
	defer os.Remove(dir)
	info.CheckedBy = "mount"
	err = mountns.InPrivate(func() error {
		// nodev, nosuid, noexec: the check only reads the image's files;
		// a device node in it must not open this machine's device.
		if _, err := loop.Mount(path, dir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
			return classifyMountErr(info.Compression, err)
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		return checkMounted(dir, &info, machines)
	})
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// classifyMountErr decides whether a failed check mount means a bad image
// (ErrCorrupt) or a host that cannot check it (ErrUnsupportedCompression).
func classifyMountErr(comp string, err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) {
		return fmt.Errorf("%w: the kernel refused to mount it: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("%w: cannot check a %s image without a working loop mount: %w", ErrUnsupportedCompression, comp, err)
}

// checkMounted checks the tree and /sbin/init of an image mounted at dir,
// and that init can run on one of machines (CheckRunnable; nil: any).
func checkMounted(dir string, info *Info, machines []uint16) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			_, err = d.Info()
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, strings.TrimPrefix(p, dir), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	target, err := openInit(root, dir, info)
	if err != nil {
		return err
	}
	defer target.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(target, MaxInitRead)); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrCorrupt, info.InitTarget, err)
	}
	if err := CheckRunnable(func(p string) ([]byte, error) { return headIn(root, p) }, info.InitTarget, machines); err != nil {
		return err
	}
	if info.Meta, err = TreeMeta(dir); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// headIn reads the first HeadSize bytes of p inside root, resolved as if
// root were "/", and reads the rest of it (see below).
func headIn(root int, p string) ([]byte, error) {
	f, err := openInRoot(root, strings.TrimPrefix(p, "/"), unix.O_RDONLY)
	if errors.Is(err, unix.ELOOP) {
		err = fmt.Errorf("%s: %w: %w", p, fs.ErrNotExist, err) // a link loop leads to nothing
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: %w", p, fs.ErrNotExist)
	}
	b := make([]byte, HeadSize)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err // CheckRunnable says it is corrupt, and where
	}
	// The rest too: p is a file the boot runs (init's interpreter or its
	// loader), and the kernel's EIO on a damaged block past the head
	// would fail that boot.
	if n == len(b) {
		if _, err := io.Copy(io.Discard, io.LimitReader(f, MaxInitRead)); err != nil {
			return nil, err
		}
	}
	return b[:n], nil
}

// openInit resolves /sbin/init under root as if root were "/", checks it and
// opens it for reading.
func openInit(root int, dir string, info *Info) (*os.File, error) {
	rel := strings.TrimPrefix(RealInit, "/")
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := fsmode.Openat2(root, rel, &how)
	if err != nil {
		return nil, initOpenError(root, rel, err)
	}
	defer unix.Close(fd)
	if link, err := os.Readlink("/proc/thread-self/fd/" + strconv.Itoa(fd)); err == nil {
		info.InitTarget = "/" + strings.TrimPrefix(strings.TrimPrefix(link, dir), "/")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", RealInit, err)
	}
	if err := CheckInitMode(info.InitTarget, fsmode.FromStat(st.Mode)); err != nil {
		return nil, err
	}
	// The mount is read-only and private to this thread, so resolving the same
	// path again for reading cannot reach a different file.
	how.Flags = unix.O_RDONLY | unix.O_CLOEXEC
	rfd, err := fsmode.Openat2(root, rel, &how)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrCorrupt, info.InitTarget, err)
	}
	return os.NewFile(uintptr(rfd), info.InitTarget), nil
}

// initOpenError tells a missing /sbin/init from a dangling or looping symlink.
func initOpenError(root int, rel string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%w: %w: resolving %s", ErrNoInit, ErrSymlinkLoop, RealInit)
	}
	if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%w: open %s: %w", ErrCorrupt, RealInit, err)
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	if fd, lerr := fsmode.Openat2(root, rel, &how); lerr == nil {
		unix.Close(fd)
		return fmt.Errorf("%w: %w: %s points to nothing inside the image", ErrNoInit, ErrDanglingSymlink, RealInit)
	}
	return fmt.Errorf("%w: %s does not exist", ErrNoInit, RealInit)
}

// CheckRoot checks a root tree at dir as an image's tree is checked: every
// entry readable, and /sbin/init, resolved inside dir, an executable file
// whose data reads. For roots that are not images (a subvolume made by the
// btrfs store's commands).
func CheckRoot(dir string, machines []uint16) (Info, error) {
	info := Info{CheckedBy: "tree"}
	if err := checkMounted(dir, &info, machines); err != nil {
		return Info{}, fmt.Errorf("%s: %w", dir, err)
	}
	return info, nil
}

// WithMounted runs fn with image loop-mounted read-only at a temporary
// directory, in a private mount namespace that only fn's thread sees (fn
// must not hand the path to other goroutines). The mount and its loop device
// go when fn returns.
func WithMounted(image string, fn func(dir string) error) error {
	dir, err := os.MkdirTemp("", "overlayupd-image-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	return mountns.InPrivate(func() error {
		if _, err := loop.Mount(image, dir, "squashfs", unix.MS_RDONLY, ""); err != nil {
			return err
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		return fn(dir)
	})
}
