package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/internal/layer"
)

// Errors of MergeUpper. ErrNotSelfContained is the layer format's own
// refusal (internal/layer, shared with the fold of a trial's layer).
var (
	ErrNotSelfContained = layer.ErrForeign
	ErrUpperChanged     = errors.New("the overlay layer changed while it was read")
)

// MergeStats counts what MergeUpper did.
type MergeStats struct {
	Written, Removed int
}

// MergeUpper folds an overlayfs upper directory into root (a writable
// snapshot of the overlay's lower layer), so that root then holds what the
// overlay showed:
//
//   - a whiteout (a 0/0 character device, or a zero-size file with
//     trusted.overlay.whiteout) removes the name;
//   - a directory with trusted.overlay.opaque=y replaces the directory below
//     (its old children go); "x" only marks xattr whiteouts inside;
//   - any other entry replaces the name: a new inode, never a write into the
//     snapshot's (which may be shared by hard links with other names);
//   - hard links within the layer are kept, except overlayfs's shared
//     whiteout inode;
//   - owner, then xattrs (file capabilities included; trusted.overlay.* and
//     user.overlay.* dropped), then mode, then times, directory times last.
//
// A layer made with redirect_dir or metacopy is refused: its directories or
// file data live partly in the lower layer. Nothing in root is reached
// through a symlink: each parent directory is opened with openat2
// RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS, and every change is made relative to
// it. The layer must not change meanwhile: it is stamped before and after,
// and a difference is ErrUpperChanged.
func MergeUpper(upper, root string) (MergeStats, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return MergeStats{}, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	m := &merger{upper: upper, root: rfd, dirs: map[string]int{}, cp: &copier{links: map[[2]uint64]string{}, buf: make([]byte, 1<<20)},
		before: sha256.New()}
	defer m.closeDirs()
	if err := filepath.WalkDir(upper, m.visit); err != nil {
		return m.stats, err
	}
	for i := len(m.times) - 1; i >= 0; i-- {
		m.trimDirs()
		fd, err := m.dir(m.times[i].path)
		if err != nil {
			return m.stats, err
		}
		if err := setTimes(at(fd, "."), &m.times[i].st); err != nil {
			return m.stats, err
		}
	}
	after, err := stampTree(upper)
	if err != nil {
		return m.stats, err
	}
	if before := fmt.Sprintf("%x", m.before.Sum(nil)); after != before {
		return m.stats, fmt.Errorf("%w: %s was written during the merge; stop what writes there and run again", ErrUpperChanged, upper)
	}
	return m.stats, nil
}

type merger struct {
	upper string
	root  int            // the snapshot's root directory (O_PATH)
	dirs  map[string]int // open parent directories in the snapshot, by path (at most maxOpenDirs between entries)
	cp    *copier        // its links: the first name of a multiply linked file, relative to the root
	times []dirTime      // directories by their path relative to the root
	stats MergeStats
	// before is the layer's stamp (stampTree) as the walk found it: each
	// entry's lstat as it is reached, before it is read. Why not a walk
	// of its own first: a change after an entry's line is in the stamp
	// after, so a second walk would catch nothing more, at the cost of one
	// lstat per file.
	before hash.Hash
}

func (m *merger) closeDirs() {
	for _, fd := range m.dirs {
		unix.Close(fd)
	}
}

// maxOpenDirs bounds the directories the merge keeps open. Why: a layer
// has as many directories as it likes (a pip or apt install in the overlay
// makes thousands), and a system started by busybox or sysvinit has the
// kernel's hard limit of 4096 descriptors; every directory is reopened by
// its path (openat2, never through a link) when it is needed again.
const maxOpenDirs = 64

// trimDirs closes the open directories when there are too many; only
// between entries, when no descriptor of the cache is in use.
func (m *merger) trimDirs() {
	if len(m.dirs) < maxOpenDirs {
		return
	}
	m.closeDirs()
	clear(m.dirs)
}

// dir opens the snapshot's directory rel, never through a symlink and never
// outside the root.
func (m *merger) dir(rel string) (int, error) {
	if fd, ok := m.dirs[rel]; ok {
		return fd, nil
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := fsmode.Openat2(m.root, rel, &how)
	if err != nil {
		return -1, fmt.Errorf("open /%s in the snapshot: %w", rel, err)
	}
	m.dirs[rel] = fd
	return fd, nil
}

// at is the path of name in the directory fd, for the *at-less calls
// (xattrs, chown, times): the magic link names that very directory, and
// every call here acts on the last component without following it ("."
// for the directory itself: the magic link is then never the last
// component, which a no-follow call would act on instead).
func at(fd int, name string) string { return fmt.Sprintf("/proc/self/fd/%d/%s", fd, name) }

func (m *merger) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(m.upper, p)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	stampEntry(m.before, p, &st)
	m.trimDirs()
	names, err := listXattrs(p)
	if err != nil {
		return err
	}
	if err := layer.ForeignNames(names, rel); err != nil {
		return err
	}
	if rel == "." {
		// The layer's root directory: its metadata is the merged root's.
		return m.meta(p, m.root, ".", &st)
	}
	parent, err := m.dir(filepath.Dir(rel))
	if err != nil {
		return err
	}
	name := filepath.Base(rel)
	kind := layer.KindOf(p, &st)
	if kind == layer.Whiteout {
		removed, err := remove(parent, name)
		if removed {
			m.stats.Removed++
		}
		return err
	}
	if kind.IsDir() {
		return m.mergeDir(p, parent, name, &st, kind == layer.OpaqueDir)
	}
	if _, err := remove(parent, name); err != nil {
		return err
	}
	if err := m.create(p, rel, parent, name, &st, names); err != nil {
		return err
	}
	m.stats.Written++
	if afterVisit != nil {
		afterVisit(rel)
	}
	return nil
}

// afterVisit, when set (by a test), is called once a file is merged.
var afterVisit func(rel string)

func (m *merger) mergeDir(p string, parent int, name string, st *unix.Stat_t, opaque bool) error {
	var cur unix.Stat_t
	exists := unix.Fstatat(parent, name, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil
	switch {
	case exists && cur.Mode&unix.S_IFMT == unix.S_IFDIR && opaque:
		// Opaque: the lower directory's children are hidden; they go.
		if err := os.RemoveAll(at(parent, name)); err != nil {
			return err
		}
		m.stats.Removed++
		exists = false
	case exists && cur.Mode&unix.S_IFMT != unix.S_IFDIR:
		if _, err := remove(parent, name); err != nil {
			return err
		}
		exists = false
	}
	if !exists {
		if err := unix.Mkdirat(parent, name, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", name, err)
		}
	} else if err := pruneXattrs(p, at(parent, name)); err != nil {
		// A copied-up directory carries all the attributes the overlay
		// shows: one it lacks was removed there.
		return err
	}
	m.stats.Written++
	return m.meta(p, parent, name, st)
}

// meta applies owner, xattrs and mode now, and the times at the end.
func (m *merger) meta(p string, parent int, name string, st *unix.Stat_t) error {
	target := at(parent, name) // "." names the directory parent itself

	if err := setMeta(p, target, st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// Times last, once nothing is created in it any more; by its
		// path, opened again then.
		rel, _ := filepath.Rel(m.upper, p)
		m.times = append(m.times, dirTime{rel, *st})
	}
	return nil
}

// create makes the entry p (a regular file, symlink or device; xattrs are
// its extended attributes' names) as name in the directory parent; rel is
// its path relative to the root.
func (m *merger) create(p, rel string, parent int, name string, st *unix.Stat_t, xattrs []string) error {
	target := at(parent, name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := m.cp.links[key]; ok {
				// The first name's directory, opened again by its path
				// (the cache is trimmed between entries, never now).
				fd, err := m.dir(filepath.Dir(first))
				if err != nil {
					return err
				}
				return unix.Linkat(fd, filepath.Base(first), parent, name, 0)
			}
			m.cp.links[key] = rel
		}
		return m.cp.copyFileAt(p, parent, name, st, xattrs)
	case unix.S_IFLNK:
		to, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(to, parent, name); err != nil {
			return err
		}
	default:
		if err := unix.Mknodat(parent, name, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", name, err)
		}
	}
	return setMeta(p, target, st)
}

// remove deletes name in the directory fd, whatever it is; a missing name
// is not an error. One call for all but a directory (unlinkat says EISDIR).
func remove(fd int, name string) (bool, error) {
	err := unix.Unlinkat(fd, name, 0)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case errors.Is(err, unix.EISDIR):
		return true, os.RemoveAll(at(fd, name))
	}
	return false, fmt.Errorf("remove %s: %w", name, err)
}

// copyFileAt is create's regular file: the data of from into a new file
// name in the directory parent (holes kept), then owner, the extended
// attributes (names: from's), mode and times, in that order (see
// CopyTree), all through descriptors: no path through /proc is resolved
// for each call, and no descriptor goes through Go's poller. Why it
// matters: persist folds tens of thousands of small files, and the calls
// around each are what it costs.
func (c *copier) copyFileAt(from string, parent int, name string, st *unix.Stat_t, names []string) (err error) {
	in, err := openFile(unix.AT_FDCWD, from, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := openFile(parent, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	ifd, ofd := int(in.Fd()), int(out.Fd())
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
	}()
	hole := false // the data ended in a block of zeros, seeked over
	for {
		n, rerr := io.ReadFull(in, c.buf)
		if n > 0 {
			if err := writeSparse(out, c.buf[:n]); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			hole = endsInZeros(c.buf[:n])
			c.bytes += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", from, rerr)
		}
	}
	if hole {
		if err := out.Truncate(st.Size); err != nil {
			return fmt.Errorf("truncate %s: %w", name, err)
		}
	}
	if err := unix.Fchown(ofd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	for _, x := range names {
		if overlayPrivate(x) {
			continue
		}
		v, err := fgetxattr(ifd, x)
		if err != nil {
			return fmt.Errorf("get xattr %s of %s: %w", x, from, err)
		}
		if err := unix.Fsetxattr(ofd, x, v, 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", x, name, err)
		}
	}
	if err := unix.Fchmod(ofd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if err := unix.UtimesNanoAt(parent, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", name, err)
	}
	return nil
}

// endsInZeros says whether writeSparse left the last block of b as a hole.
func endsInZeros(b []byte) bool {
	const block = 4096
	var zero [block]byte
	last := (len(b) - 1) &^ (block - 1)
	return bytes.Equal(b[last:], zero[:len(b)-last])
}

// fgetxattr reads one extended attribute of the file open as fd.
func fgetxattr(fd int, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// stampTree digests what a tree is (names, inodes, types, sizes, change
// and modification times): any write in it changes the stamp.
func stampTree(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		stampEntry(h, p, &st)
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil)), err
}

// stampEntry adds the entry p, whose lstat is st, to a stamp.
func stampEntry(h io.Writer, p string, st *unix.Stat_t) {
	fmt.Fprintf(h, "%s\x00%d %o %d %d.%d %d.%d\n", p, st.Ino, st.Mode, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

// pruneXattrs removes from to the attributes that from does not have.
func pruneXattrs(from, to string) error {
	have, err := listXattrs(from)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, n := range have {
		keep[n] = true
	}
	cur, err := listXattrs(to)
	if err != nil {
		return err
	}
	for _, n := range cur {
		if !keep[n] && !layer.Private(n) {
			if err := unix.Lremovexattr(to, n); err != nil {
				return fmt.Errorf("remove xattr %s of %s: %w", n, to, err)
			}
		}
	}
	return nil
}
