package layer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// get next's attributes, as they show in the merged root anyway.
func Reveal(next, top, rel string) error {
	rfd, err := openRoot(next)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		dst := filepath.Join(top, p)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := copyFrom(rfd, p, dst, false); err != nil {
			return err
		}
	}
	dst := filepath.Join(top, rel)
	if e, err := lookup(rfd, rel); err != nil {
		return err
	} else if !e.Exists() {
		if err := unix.Mknod(dst, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("reveal /%s: whiteout: %w", rel, err)
		}
		return nil
	}
	if err := copyFrom(rfd, rel, dst, true); err != nil {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		return unix.Lsetxattr(dst, OpaqueXattr, []byte("y"), 0)
	}
	return nil
}

// copyFrom copies rel of the image root rfd to dst: a directory with its
// tree when whole, else only itself. The source is named through its
// parent's descriptor, so that its last component is its own name (the
// calls on attributes and links act on it, not on a magic link).
func copyFrom(rfd int, rel, dst string, whole bool) error {
	dir, base := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	fd, err := openIn(rfd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("reveal /%s: %w", rel, err)
	}
	defer unix.Close(fd)
	src := fmt.Sprintf("/proc/self/fd/%d/%s", fd, base)
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && whole {
		return copyTree(src, dst)
	}
	return copyOne(src, dst, &st)
}

// copyTree copies the directory src (not followed at its top: the caller
// opened it) to dst, then every entry under it.
func copyTree(src, dst string) error {
	var dirs []struct {
		path string
		st   unix.Stat_t
	}
	err := filepath.WalkDir(src+"/.", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src+"/.", p)
		to := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if err := copyOne(p, to, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			dirs = append(dirs, struct {
				path string
				st   unix.Stat_t
			}{to, st})
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		err = setTimes(dirs[i].path, &dirs[i].st)
	}
	return err
}

// copyOne copies one entry (a directory without its children).
func copyOne(src, dst string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyData(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		to, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(to, dst); err != nil {
			return err
		}
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := CopyMeta(src, dst, st); err != nil {
		return err
	}
	return setTimes(dst, st)
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

func setTimes(p string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}
