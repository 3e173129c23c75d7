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
const wbWindow = 128 << 20

// writeback keeps the page cache of a big copy in check: every wbWindow bytes
// it starts writeback of the new window, waits for the previous one and drops
// it from the page cache. The disk then works during the copy instead of in one
// long flush at fsync time, and a small device is not pushed into memory
// pressure. It runs on its own goroutine so that waiting for the disk never
// stalls the copy and the hasher (the kernel's dirty-page throttling still
// bounds how far the copy runs ahead). Errors are ignored: these calls are
// hints, the final fsync reports I/O errors.
type writeback struct {
	fd   int
	ch   chan int64
	done chan struct{}
}

func newWriteback(f *os.File) *writeback {
	w := &writeback{fd: int(f.Fd()), ch: make(chan int64, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// advance reports how many bytes are written; it never blocks (a busy
// writeback goroutine catches up with a later report).
func (w *writeback) advance(written int64) {
	select {
	case w.ch <- written:
	default:
	}
}

// stop waits for the goroutine; call it before the file is closed.
func (w *writeback) stop() {
	close(w.ch)
	<-w.done
}

func (w *writeback) run() {
	defer close(w.done)
	var started, dropped int64
	for written := range w.ch {
		if written-started < wbWindow {
			continue
		}
		_ = unix.SyncFileRange(w.fd, started, written-started, unix.SYNC_FILE_RANGE_WRITE)
		if started > dropped {
			_ = unix.SyncFileRange(w.fd, dropped, started-dropped,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			_ = unix.Fadvise(w.fd, dropped, started-dropped, unix.FADV_DONTNEED)
			dropped = started
		}
		started = written
	}
}

func adviseSequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}
