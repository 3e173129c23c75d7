package squash

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// cfrChunk is how much one copy_file_range call copies.
const cfrChunk = 8 << 20

// copyFileHashed is copyHashed for a regular source file of known size: the
// kernel copies the data (copy_file_range, no round trip through our memory)
// while a goroutine reads the same bytes from the page cache and hashes them,
// so the hash costs no copy time. ok is false, with nothing copied, when the
// kernel cannot copy between these files (other filesystem type, old
// kernel): the caller then copies through memory.
//
// Without extra, the sha256 and the tree are of the source's pages. With extra (a
// signature's hash), every hash is of the destination's pages, read back
// from the page cache right behind the copy: a signature is checked on the
// bytes that are staged, never on a second read of the source.
func copyFileHashed(ctx context.Context, dst, src *os.File, size int64, progress func(int64), extra io.Writer) (d digests, n int64, ok bool, err error) {
	hashDone := make(chan error, 1)
	h := newImageHash(size)
	defer h.stop()
	stopHash := make(chan struct{})
	var copied chan int64
	if extra == nil {
		go func() {
			in := struct{ io.Reader }{io.NewSectionReader(cancelReaderAt{src, stopHash}, 0, size)}
			_, err := io.CopyBuffer(h, in, make([]byte, copyBuf))
			hashDone <- err
		}()
	} else {
		// One offset per chunk, and the channel holds them all: the copy
		// never waits for the hashes.
		copied = make(chan int64, size/cfrChunk+2)
		go func() { hashDone <- hashStaged(dst, copied, stopHash, []io.Writer{h, extra}) }()
	}
	defer func() {
		if copied != nil {
			close(copied)
		}
		if err != nil || !ok {
			close(stopHash)
		}
		herr := <-hashDone
		if err == nil && ok && herr != nil {
			err = fmt.Errorf("hash input: %w", herr)
		}
		if err == nil && ok {
			d, err = h.finish()
		}
	}()
	wb := newWriteback(dst)
	defer wb.stop()
	var off int64
	for off < size {
		if err := ctx.Err(); err != nil {
			return d, off, true, fmt.Errorf("copy cancelled after %d bytes: %w", off, err)
		}
		k, cerr := unix.CopyFileRange(int(src.Fd()), &off, int(dst.Fd()), nil, int(min(cfrChunk, size-off)), 0)
		if cerr != nil {
			if off == 0 && (errors.Is(cerr, unix.EXDEV) || errors.Is(cerr, unix.EINVAL) ||
				errors.Is(cerr, unix.ENOSYS) || errors.Is(cerr, unix.EOPNOTSUPP)) {
				return d, 0, false, nil
			}
			return d, off, true, fmt.Errorf("copy to %s: %w", dst.Name(), noSpace(cerr))
		}
		if k == 0 {
			return d, off, true, fmt.Errorf("%w: got %d of %d bytes", ErrShortRead, off, size)
		}
		wb.advance(off)
		if copied != nil {
			copied <- off
		}
		if progress != nil {
			progress(off)
		}
	}
	// The file must not have grown since its size was taken.
	var one [1]byte
	if k, _ := src.ReadAt(one[:], size); k > 0 {
		return d, off, true, fmt.Errorf("%w: more than %d bytes", ErrInputTooLong, size)
	}
	return d, off, true, nil
}

// hashStaged reads dst back from the page cache as far as each offset
// received on copied, in copyBuf chunks, and hashes every chunk with each
// of ws on its own goroutine (hashLane). It ends when copied is closed, or
// early when stop is.
func hashStaged(dst *os.File, copied <-chan int64, stop <-chan struct{}, ws []io.Writer) (err error) {
	lanes := make([]hashLane, len(ws))
	for i, w := range ws {
		lanes[i] = newHashLane(w)
	}
	defer func() {
		for _, l := range lanes {
			l.wait()
		}
	}()
	var off int64
	used := 0
	for end := range copied {
		for off < end {
			select {
			case <-stop:
				return errors.New("copy stopped")
			default:
			}
			var buf []byte
			if used < hashBufs {
				buf = make([]byte, copyBuf)
			} else {
				for _, l := range lanes {
					buf = <-l.done
				}
			}
			used++
			buf = buf[:min(int64(cap(buf)), end-off)]
			k, err := dst.ReadAt(buf, off)
			if k < len(buf) {
				return fmt.Errorf("read back %s at %d: %d of %d bytes: %w", dst.Name(), off, k, len(buf), err)
			}
			for _, l := range lanes {
				l.todo <- buf
			}
			off += int64(k)
		}
	}
	return nil
}

// cancelReaderAt stops the hasher early when the copy failed.
type cancelReaderAt struct {
	f    *os.File
	stop chan struct{}
}

func (c cancelReaderAt) ReadAt(p []byte, off int64) (int, error) {
	select {
	case <-c.stop:
		return 0, errors.New("copy stopped")
	default:
	}
	return c.f.ReadAt(p, off)
}
