package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// What overlayupd.shadow=image does with a shadow. In a committed boot the
// persistent layer belongs to the root that boots: SetAside moves the
// user's entry out of the layer, and the image's shows. In a trial boot the
// persistent layer is read-only below the trial (the trial must not change
// it): Reveal copies the image's entry into a small top layer (a tmpfs
// stacked above the persistent layer), and the user's entry stays where it
// is until the trial is committed, when the first committed boot sets it
// aside.

// SetAside moves the entry rel of the layer directory to aside/rel (on the
// same filesystem: one rename, the user's file is never copied, so never
// lost nor half there), making aside's missing directories. An entry
// already at the target is kept: the new one gets a ".N" suffix.
func SetAside(layer, aside, rel string) (string, error) {
	to := filepath.Join(aside, rel)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return "", fmt.Errorf("set aside /%s: %w", rel, err)
	}
	target := to
	for i := 1; ; i++ {
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(layer, rel), unix.AT_FDCWD, target, unix.RENAME_NOREPLACE)
		if err == nil {
			return target, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("set aside /%s: %w", rel, err)
		}
		target = fmt.Sprintf("%s.%d", to, i)
	}
}

// Reveal makes the top layer directory top show, at rel, what the image
// tree next has there: a copy of it (a directory, whole and opaque), or a
// whiteout when the image has nothing there. The parents it makes in top
// get next's attributes, as they show in the merged root anyway. The image
// is read through its parent directory's descriptor, opened inside next
// (openat2 RESOLVE_IN_ROOT): a link in the image never leads out of it.
func Reveal(next, top, rel string) error {
	rfd, err := openRoot(next)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	parts := strings.Split(rel, "/")
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		dst := top + "/" + p
		if _, err := os.Lstat(dst); err == nil && i < len(parts) {
			continue
		}
		dir, base := ".", parts[i-1]
		if i > 1 {
			dir = strings.Join(parts[:i-1], "/")
		}
		fd, err := openIn(rfd, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			err = copyEntry(fmt.Sprintf("/proc/self/fd/%d/%s", fd, base), dst, i == len(parts))
			unix.Close(fd)
		}
		switch {
		case errors.Is(err, unix.ENOENT) && i == len(parts):
			err = unix.Mknod(dst, unix.S_IFCHR, 0) // the image has none: a whiteout
		case errors.Is(err, unix.ENOENT):
			err = os.Mkdir(dst, 0o755) // a directory the image dropped: only its shadowed files are hidden
		}
		if err != nil {
			return fmt.Errorf("reveal /%s: %w", rel, err)
		}
	}
	if fi, err := os.Lstat(top + "/" + rel); err == nil && fi.IsDir() {
		return unix.Lsetxattr(top+"/"+rel, OpaqueXattr, []byte("y"), 0)
	}
	return nil
}

// copyEntry copies src to dst, a directory with all it holds when whole:
// the entry, then owner, attributes and mode, then times (a directory's
// after its children, which change them).
func copyEntry(src, dst string, whole bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = os.Mkdir(dst, 0o700)
	case unix.S_IFREG:
		err = copyData(src, dst)
	case unix.S_IFLNK:
		var to string
		if to, err = os.Readlink(src); err == nil {
			err = unix.Symlink(to, dst)
		}
	default:
		err = unix.Mknod(dst, st.Mode, int(st.Rdev))
	}
	if err == nil {
		err = CopyMeta(src, dst, &st)
	}
	if err == nil && whole && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		var names []string
		if names, err = readNamesAt(src); err == nil {
			for _, n := range names {
				if err = copyEntry(src+"/"+n, dst+"/"+n, true); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

func readNamesAt(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

func copyData(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
