package squash

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// statfsFree returns the bytes an unprivileged writer may still use in dir; a
// variable so tests can fake a full store.
var statfsFree = func(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// preallocate reserves size bytes so that a store that cannot hold the image
// fails at once with ENOSPC instead of after most of the copy, and the image is
// laid out in few extents. Filesystems without fallocate are fine.
func preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

// wbWindow is how much written data may be in flight before Stage waits for it.
const wbWindow = 32 << 20

// writeback keeps the dirty page cache of a big copy bounded: every wbWindow
// bytes it starts writeback of the new window, waits for the previous one and
// drops it from the page cache. The disk then works during the copy instead of
// in one long flush at fsync time, and a small device is not pushed into memory
// pressure. Errors are ignored here: these calls are hints, fsync reports I/O
// errors.
type writeback struct {
	fd               int
	started, dropped int64
}

func newWriteback(f *os.File) *writeback { return &writeback{fd: int(f.Fd())} }

func (w *writeback) advance(written int64) {
	if written-w.started < wbWindow {
		return
	}
	_ = unix.SyncFileRange(w.fd, w.started, written-w.started, unix.SYNC_FILE_RANGE_WRITE)
	if w.started > w.dropped {
		_ = unix.SyncFileRange(w.fd, w.dropped, w.started-w.dropped,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		_ = unix.Fadvise(w.fd, w.dropped, w.started-w.dropped, unix.FADV_DONTNEED)
		w.dropped = w.started
	}
	w.started = written
}

func adviseSequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}
