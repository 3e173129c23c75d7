package squash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

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

const (
	// wbStart is how much newly written data Stage lets gather before it
	// starts the disk on it.
	wbStart = 8 << 20
)

// wbWindow is how much written data may be in flight before Stage waits
// for it and drops it from the page cache; a variable for tests.
var wbWindow int64 = 128 << 20

// writeback keeps the disk busy during a big copy and its page cache in
// check: every wbStart bytes it starts writeback of the new data, and it
// waits for the data a wbWindow behind and drops it from the page cache.
// Why start so early: the kernel's own flusher starts only past
// dirty_background_ratio (10% of memory: gigabytes on a big machine), so a
// copy that left it to the kernel would have the disk idle while it copies
// and hashes, then write everything in one long fsync. A small device is
// not pushed into memory pressure either. It runs on its own goroutine so
// that waiting for the disk never stalls the copy and the hashes (the
// kernel's dirty-page throttling still bounds how far the copy runs ahead).
type writeback struct {
	fd    int
	ch    chan int64
	done  chan struct{}
	flush atomic.Bool
	// err is the first error of a call that waited for the disk; read it
	// after done. Why it must be kept, not dropped as a hint's: since Linux
	// 4.13 a writeback error is reported once per open file (errseq), to
	// whichever call waits first, so the final fsync would then succeed
	// over data that never reached the disk.
	err error
}

// syncFileRange and fdatasync are the kernel's; variables so that a test
// can fail them as a failing disk would.
var (
	syncFileRange = unix.SyncFileRange
	fdatasync     = unix.Fdatasync
)

func newWriteback(f *os.File) *writeback {
	w := &writeback{fd: int(f.Fd()), ch: make(chan int64, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// advance reports how many bytes are written; it never blocks (a busy
// writeback goroutine catches up with a later report).
func (w *writeback) advance(written int64) {
	select {
	case <-w.ch: // a report the goroutine has not taken yet: this one is newer
	default:
	}
	select {
	case w.ch <- written:
	default:
	}
}

// finish says that the copy is over. With flush, the goroutine starts
// writeback of the rest and waits for all of it (fdatasync) while the
// caller goes on: the disk then works while the hashes finish, and the
// final fsync has little left to do. Call wait after it.
func (w *writeback) finish(flush bool) {
	w.flush.Store(flush)
	close(w.ch)
}

// wait waits for the goroutine and returns the first error of a call that
// waited for the disk; call it before the file is closed.
func (w *writeback) wait() error {
	<-w.done
	return w.err
}

func (w *writeback) run() {
	defer close(w.done)
	var started, dropped int64
	for written := range w.ch {
		if written-started >= wbStart {
			_ = syncFileRange(w.fd, started, written-started, unix.SYNC_FILE_RANGE_WRITE) // a start only: errors come with the waits
			started = written
		}
		limit := started - wbWindow
		if limit > dropped {
			if err := syncFileRange(w.fd, dropped, limit-dropped,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
				if w.fail(err) {
					return
				}
			}
			_ = unix.Fadvise(w.fd, dropped, limit-dropped, unix.FADV_DONTNEED) // a hint
			dropped = limit
		}
	}
	if w.flush.Load() {
		if err := fdatasync(w.fd); err != nil {
			w.fail(err)
		}
	}
}

// fail keeps err and drains the reports, so advance never blocks. A call
// the kernel or the filesystem does not offer (qemu-user without the
// syscall, a special file) is no loss of data: writeback then goes on
// without these hints, and the final fsync is the word on the disk.
// It says whether err was kept.
func (w *writeback) fail(err error) bool {
	for _, unsupported := range []error{unix.ENOSYS, unix.EINVAL, unix.EOPNOTSUPP, unix.ESPIPE} {
		if errors.Is(err, unsupported) {
			return false
		}
	}
	w.err = fmt.Errorf("write back: %w", err)
	for range w.ch {
	}
	return true
}

func adviseSequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}

// cfrChunk is how much one copy_file_range call copies.
const cfrChunk = 8 << 20

// copyFileHashed is copyHashed for a regular source file of known size and
// an unsigned apply: the kernel copies the data (copy_file_range, no round
// trip through our memory) while goroutines read the source's pages from
// the page cache and hash them, so the hashes cost no copy time. ok is
// false, with nothing copied, when the kernel cannot copy between these
// files (other filesystem type, old kernel): the caller then copies through
// memory. A signed apply never comes here (see StageWith): these hashes
// are of a second read of the source.
//
// Why the source's ctime is compared before and after: the kernel copies
// and the hashes read separately, so a write to the source in between
// (another program still writing the image) would stage bytes other than
// the ones hashed, and record a sha256 and a tree that the staged file does
// not have (dm-verity then refuses it at boot). Any write moves the ctime.
func copyFileHashed(ctx context.Context, dst, src *os.File, size, trailing int64, progress func(int64)) (d digests, n int64, ok bool, err error) {
	var before unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &before); err != nil {
		return d, 0, true, fmt.Errorf("stat %s: %w", src.Name(), err)
	}
	defer func() {
		if err != nil || !ok {
			return
		}
		var after unix.Stat_t
		if serr := unix.Fstat(int(src.Fd()), &after); serr != nil {
			err = fmt.Errorf("stat %s: %w", src.Name(), serr)
		} else if after.Ctim != before.Ctim || after.Mtim != before.Mtim || after.Size != before.Size {
			err = fmt.Errorf("%w: %s was written to during the copy", ErrInputChanged, src.Name())
		}
	}()
	h := newImageHash(size, dst, false)
	stopHash := make(chan struct{})
	hashDone := make(chan error, 1)
	go func() { hashDone <- hashFile(src, size, stopHash, h.writers(nil)) }()
	wb := newWriteback(dst)
	defer func() {
		// Why in this order: the last writeback starts before the wait for
		// the hashes, so the disk works while they finish.
		wb.finish(err == nil && ok)
		if err != nil || !ok {
			close(stopHash)
		}
		herr := <-hashDone
		werr := wb.wait()
		if err == nil && ok && werr != nil {
			err = fmt.Errorf("%s: %w", dst.Name(), noSpace(werr))
		}
		if err == nil && ok && herr != nil {
			err = fmt.Errorf("hash the input: %w", herr)
		}
		if err == nil && ok {
			d, err = h.finish()
		}
	}()
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
		if progress != nil {
			progress(off)
		}
	}
	// The file must not have grown since its size was taken.
	var one [1]byte
	if k, _ := src.ReadAt(one[:], size+trailing); k > 0 {
		return d, off, true, fmt.Errorf("%w: more than %d bytes", ErrInputTooLong, size+trailing)
	}
	return d, off, true, nil
}

// hashFile reads f's first size bytes in copyBuf chunks and hashes every
// chunk with each of ws (lanes). It ends early when stop is closed.
func hashFile(f *os.File, size int64, stop <-chan struct{}, ws []io.Writer) (err error) {
	ls := startLanes(ws)
	defer ls.wait()
	for off := int64(0); off < size; {
		select {
		case <-stop:
			return errors.New("copy stopped")
		default:
		}
		buf := ls.buffer()
		buf = buf[:min(int64(len(buf)), size-off)]
		k, err := f.ReadAt(buf, off)
		if k < len(buf) {
			ls.unused(buf)
			if err == nil || err == io.EOF {
				err = ErrShortRead
			}
			return fmt.Errorf("read %s at %d: %d of %d bytes: %w", f.Name(), off, k, len(buf), err)
		}
		ls.hash(buf)
		off += int64(k)
	}
	return nil
}
