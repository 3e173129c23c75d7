package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/layer"
)

// CopyTree copies the tree at src into dst, an empty directory (a fresh
// subvolume): every file type, owners, modes (setuid included), extended
// attributes (file capabilities included), times, and hard links. It stays
// on src's filesystem (a mount point below src becomes an empty directory,
// as cp -x does), never follows a symlink, and leaves holes where the
// source has blocks of zeros. Overlay-private attributes (trusted.overlay.*,
// user.overlay.*) are not copied: in a lower layer they would change what
// the next overlay shows. progress, if set, gets the bytes copied so far.
//
// Order per entry, as the kernel needs it: create, then owner (chown clears
// setuid bits and file capabilities), then xattrs, then mode, then times;
// directory times last, once nothing is created in them any more.
func CopyTree(src, dst string, progress func(int64)) error {
	des, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	if len(des) > 0 {
		return fmt.Errorf("copy into %s: not empty", dst)
	}
	var root unix.Stat_t
	if err := unix.Lstat(src, &root); err != nil {
		return fmt.Errorf("copy from %s: %w", src, err)
	}
	c := &copier{src: src, dst: dst, dev: root.Dev, links: map[[2]uint64]string{}, progress: progress, buf: make([]byte, 1<<20)}
	c.startWorkers()
	werr := filepath.WalkDir(src, c.visit)
	if err := c.stopWorkers(); werr == nil {
		werr = err
	}
	if werr != nil {
		return werr
	}
	// The files' metadata after their data: writing a file drops its
	// capabilities (and setuid bits), so owner, xattrs and mode go last.
	for _, f := range c.files {
		if err := setMeta(f.from, f.to, &f.st); err != nil {
			return err
		}
	}
	for i := len(c.dirs) - 1; i >= 0; i-- { // deepest last-visited first
		if err := setTimes(c.dirs[i].path, &c.dirs[i].st); err != nil {
			return err
		}
	}
	return nil
}

type copier struct {
	src, dst string
	dev      uint64
	links    map[[2]uint64]string // (dev, ino) of a multiply linked file -> its first copy
	dirs     []dirTime
	bytes    int64
	progress func(int64)
	buf      []byte

	// The data of regular files is copied by workers: the walk opens both
	// ends (so that the work needs no path: the walk may run in a private
	// mount namespace that only its own thread sees), the workers read and
	// write, and the metadata is applied once all data is written.
	jobs    chan copyJob
	wg      sync.WaitGroup
	errOnce sync.Once
	werr    error
	failed  atomic.Bool
	copied  atomic.Int64
	progMu  sync.Mutex // progress is called from one worker at a time
	files   []fileMeta
}

type copyJob struct {
	in, out *os.File
	size    int64
}

type fileMeta struct {
	from, to string
	st       unix.Stat_t
}

// copyWorkers is how many files' data are copied at once: reading an image
// through a loop device and squashfs is one thread's work per file.
const copyWorkers = 2

func (c *copier) startWorkers() {
	c.jobs = make(chan copyJob, 64)
	for range copyWorkers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			buf := make([]byte, 1<<20)
			for j := range c.jobs {
				err := c.fill(j, buf)
				if err != nil {
					c.errOnce.Do(func() { c.werr = err })
					c.failed.Store(true)
				}
			}
		}()
	}
}

func (c *copier) stopWorkers() error {
	close(c.jobs)
	c.wg.Wait()
	return c.werr
}

// fill copies one file's data, holes kept, and closes both ends.
func (c *copier) fill(j copyJob, buf []byte) (err error) {
	defer j.in.Close()
	defer func() {
		if cerr := j.out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if c.failed.Load() {
		return nil // an earlier file failed: the copy is abandoned
	}
	for {
		n, rerr := io.ReadFull(j.in, buf)
		if err := writeSparse(j.out, buf[:n]); err != nil {
			return fmt.Errorf("write %s: %w", j.out.Name(), err)
		}
		if total := c.copied.Add(int64(n)); c.progress != nil {
			c.progMu.Lock()
			c.progress(total)
			c.progMu.Unlock()
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", j.in.Name(), rerr)
		}
	}
	return j.out.Truncate(j.size)
}

type dirTime struct {
	path string
	st   unix.Stat_t
}

func (c *copier) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(c.src, p)
	if err != nil {
		return err
	}
	target := filepath.Join(c.dst, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", p, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if rel != "." {
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		}
		if err := setMeta(p, target, &st); err != nil {
			return err
		}
		c.dirs = append(c.dirs, dirTime{target, st})
		if st.Dev != c.dev {
			return fs.SkipDir // another filesystem mounted here: its mount point only
		}
		return nil
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[key]; ok {
				return os.Link(first, target)
			}
			c.links[key] = target
		}
		in, err := openFile(unix.AT_FDCWD, p, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		out, err := openFile(unix.AT_FDCWD, target, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		c.jobs <- copyJob{in: in, out: out, size: st.Size}
		c.files = append(c.files, fileMeta{p, target, st})
		return nil
	case unix.S_IFLNK:
		to, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.Symlink(to, target); err != nil {
			return err
		}
	default: // devices, FIFOs, sockets
		if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", target, err)
		}
	}
	return setMeta(p, target, &st)
}

// openFile opens name in the directory dir (or AT_FDCWD) without Go's
// poller: a regular file gains nothing from it, and os.OpenFile's
// registration costs calls on every file of a tree.
func openFile(dir int, name string, flags int, perm uint32) (*os.File, error) {
	for {
		fd, err := unix.Openat(dir, name, flags|unix.O_CLOEXEC, perm)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// writeSparse writes b at the file's offset, seeking over 4 KiB blocks of
// zeros (they stay holes) and writing each run of other blocks in one call.
func writeSparse(out *os.File, b []byte) error {
	const block = 4096
	var zero [block]byte
	start := 0 // start of the pending run of data blocks
	for off := 0; off < len(b); off += block {
		end := min(off+block, len(b))
		if !bytes.Equal(b[off:end], zero[:end-off]) {
			continue
		}
		if off > start {
			if _, err := out.Write(b[start:off]); err != nil {
				return err
			}
		}
		if _, err := out.Seek(int64(end-off), io.SeekCurrent); err != nil {
			return err
		}
		start = end
	}
	if start < len(b) {
		_, err := out.Write(b[start:])
		return err
	}
	return nil
}

// setMeta gives target the owner, xattrs, mode and (but for directories,
// done last) times of the source entry.
func setMeta(from, to string, st *unix.Stat_t) error {
	if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", to, err)
	}
	if err := copyXattrs(from, to); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(unix.AT_FDCWD, to, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", to, err)
		}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	return setTimes(to, st)
}

func setTimes(path string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", path, err)
	}
	return nil
}

// The layer format's helpers (internal/layer), shared with the fold of a
// trial's layer at boot.
var (
	overlayPrivate = layer.Private
	listXattrs     = layer.ListXattrs
	getXattr       = layer.GetXattr
)

func copyXattrs(from, to string) error {
	names, err := listXattrs(from)
	if err != nil {
		return err
	}
	for _, n := range names {
		if overlayPrivate(n) {
			continue
		}
		v, err := getXattr(from, n)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(to, n, v, 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", n, to, err)
		}
	}
	return nil
}
