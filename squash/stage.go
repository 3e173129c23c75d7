package squash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/trampoline"
)

const (
	copyBuf   = 1 << 20 // read/write/hash chunk
	minMargin = 1 << 20 // free space kept back besides the image, at least
	hashBufs  = 4       // chunks in flight between the copy and the hasher
)

// spaceMargin is the free space Stage keeps besides an image of size bytes:
// 1% of it, at least 1 MiB, so a full store still has room for a directory
// fsync, a lock file and the status the trampoline writes.
func spaceMargin(size int64) int64 { return max(minMargin, size/100) }

// checkSpace decides whether size bytes fit in free bytes with the margin.
func checkSpace(dir string, size int64, free uint64) error {
	m := spaceMargin(size)
	if uint64(size)+uint64(m) > free {
		return fmt.Errorf("%w in %s: the image needs %d bytes plus a %d-byte margin, %d bytes are free",
			ErrNoSpace, dir, size, m, free)
	}
	return nil
}

// Options are Stage's optional parts.
type Options struct {
	// Progress, if not nil, is called with the number of bytes copied so far.
	Progress func(int64)
	// Hash, if not nil, is written every byte that is staged, in order, in
	// the same pass as the copy: a signature's hash (trust.Hasher). It (and
	// the sha256) then hashes the staged bytes themselves: the buffer that
	// is written, even for a file the kernel could copy (copy_file_range);
	// never a second read of the source, which may have changed in between.
	Hash io.Writer
	// Expect, if not nil, is a signed digest of the image: the staged copy
	// must have its size and its dm-verity root hash, else StageWith fails
	// with ErrDigestMismatch and nothing is left. The tree is then of the
	// staged bytes, as for Hash (the buffer that is written). The sha256 is then not
	// computed: the sum returned is Expect.SHA256. Why that is sound: the
	// root hash of the tree (sha256 at every level, the fixed salt) and the
	// size fix every byte, so bytes with the signed root and size are the
	// bytes whose sha256 the signer stated. Why it is worth it: the whole
	// file's sha256 is one SHA-256 pass of the image on a core of its own,
	// as much CPU as the tree; a signed apply then costs the tree alone.
	Expect *Expected
	// Trailing is how many bytes of the input follow its size bytes and
	// are not the image: the old dm-verity tree and trailer of a file that
	// is a store's entry (ImageExtent). They are neither copied nor
	// hashed, and the input must end right after them.
	Trailing int64
}

// Expected is what a signed digest states of an image (trust.Digest).
type Expected struct {
	Size         int64
	SHA256, Root [32]byte
}

// check compares the staged copy (n bytes, tree root) with e.
func (e *Expected) check(n int64, root [32]byte) error {
	if n != e.Size {
		return fmt.Errorf("%w: %d bytes were staged, the digest says %d", ErrDigestMismatch, n, e.Size)
	}
	if root != e.Root {
		return fmt.Errorf("%w: its dm-verity root hash is %x, the digest says %x (the image changed after its digest was signed, or the digest is another image's)", ErrDigestMismatch, root, e.Root)
	}
	return nil
}

// Stage is StageWith with a progress callback only.
func Stage(ctx context.Context, r io.Reader, size int64, dir string, progress func(int64)) (tmpPath string, sum [32]byte, n int64, err error) {
	return StageWith(ctx, r, size, dir, Options{Progress: progress})
}

// StageWith copies r into a new temp file in dir (named trampoline.StagePrefix+random),
// computing its sha256, its dm-verity hash tree (and opt.Hash) while copying,
// appends the tree and its trailer after the image bytes (package verity), and
// fsyncs it. It never renames the file into a slot: the caller validates it and
// the trampoline renames it.
//
// n and sum are the image's own bytes, without the tree.
//
// size is the expected length, or -1 when unknown (stdin). When it is known,
// Stage first checks that it and its tree fit in dir's free space with
// spaceMargin and refuses with ErrNoSpace before writing anything, and an input that is shorter
// or longer is an error (ErrShortRead, ErrInputTooLong). When it is unknown, a short input cannot
// be told from a complete one here: validate the staged file.
//
// On any error, including ENOSPC, a failing reader and ctx cancellation (checked
// between chunks), the temp file is removed, so dir is left as it was.
func StageWith(ctx context.Context, r io.Reader, size int64, dir string, opt Options) (tmpPath string, sum [32]byte, n int64, err error) {
	progress := opt.Progress
	if opt.Expect != nil {
		if !withTree {
			return "", sum, 0, fmt.Errorf("%w: staging without the dm-verity tree cannot check it", ErrDigestMismatch)
		}
		if size >= 0 && size != opt.Expect.Size {
			return "", sum, 0, fmt.Errorf("%w: the image is %d bytes, the digest says %d", ErrDigestMismatch, size, opt.Expect.Size)
		}
	}
	if size >= 0 {
		free, err := statfsFree(dir)
		if err != nil {
			return "", sum, 0, fmt.Errorf("free space of %s: %w", dir, err)
		}
		if err := checkSpace(dir, size+treeOverhead(size), free); err != nil {
			return "", sum, 0, err
		}
	}
	f, err := os.CreateTemp(dir, trampoline.StagePrefix+"*")
	if err != nil {
		return "", sum, 0, fmt.Errorf("create temp file in %s: %w", dir, noSpace(err))
	}
	tmpPath = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmpPath)
			// Best effort: make the removal durable too; the error that matters is err.
			_ = atomicfile.SyncDir(dir)
			tmpPath, n = "", 0
		}
	}()
	if err = preallocate(f, size+treeOverhead(size)); err != nil {
		return tmpPath, sum, 0, fmt.Errorf("reserve %d bytes for %s: %w", size, tmpPath, noSpace(err))
	}
	copied := false
	var d digests
	// Why a signed apply copies through memory: the signature is checked on
	// the bytes that are staged, so they are hashed from the very buffer
	// that is written, never from a second read of the source (which may
	// have changed in between). Reading the staged copy back behind the
	// kernel's copy did the same at twice the time: the read-back falls
	// behind the copy and finishes alone (1 GiB, 2 cores: 2.2 s against
	// 1.0 s through memory).
	if src, isFile := r.(*os.File); isFile && size >= 0 && isRegular(src) && opt.Hash == nil && opt.Expect == nil {
		if d, n, copied, err = copyFileHashed(ctx, f, src, size, opt.Trailing, progress); err != nil {
			return tmpPath, sum, n, err
		}
	}
	if !copied {
		if d, n, err = copyHashed(ctx, f, r, size, opt.Trailing, progress, opt.Hash, opt.Expect); err != nil {
			return tmpPath, sum, n, err
		}
	}
	sum = d.sum
	if opt.Expect != nil {
		if err = opt.Expect.check(n, d.tree.Root); err != nil {
			return tmpPath, sum, n, err
		}
		sum = opt.Expect.SHA256
	}
	if err = appendTree(f, d, n); err != nil {
		return tmpPath, sum, n, err
	}
	if size < 0 {
		// A stream's size was not known before the copy, so the margin
		// is checked now: the image must leave the store its margin, as
		// one of known size must before its copy starts.
		free, ferr := statfsFree(dir)
		if ferr == nil && free < uint64(spaceMargin(n)) {
			return tmpPath, sum, n, fmt.Errorf("%w in %s: the image (%d bytes and its tree) leaves %d bytes free, less than the %d-byte margin a store keeps",
				ErrNoSpace, dir, n, free, spaceMargin(n))
		}
	}
	if err = f.Chmod(0o644); err != nil {
		return tmpPath, sum, n, fmt.Errorf("chmod %s: %w", tmpPath, err)
	}
	// Why: the trampoline renames this file into a slot; its contents must be on
	// disk before that rename can become durable, or a crash leaves a slot
	// pointing at a partial image.
	if err = f.Sync(); err != nil {
		return tmpPath, sum, n, fmt.Errorf("fsync %s: %w", tmpPath, noSpace(err))
	}
	if err = f.Close(); err != nil {
		return tmpPath, sum, n, fmt.Errorf("close %s: %w", tmpPath, noSpace(err))
	}
	return tmpPath, sum, n, nil
}

// copyHashed copies r to f in copyBuf chunks with bounded dirty page cache (see
// writeback). With size >= 0 it copies exactly size bytes. extra, if not nil,
// is a second hash of the same bytes.
//
// Each hash runs on its own goroutine (lanes), overlapped with the write of the same
// chunk: the sha256, the verity tree or BLAKE2b would otherwise add its whole time to
// the copy. At most hashBufs chunks are in flight, so memory stays at hashBufs
// MiB whatever the image size.
func copyHashed(ctx context.Context, f *os.File, r io.Reader, size, trailing int64, progress func(int64), extra io.Writer, expect *Expected) (d digests, n int64, err error) {
	h := newImageHash(size, f, expect != nil)
	ls := startLanes(h.writers(extra))
	wb := newWriteback(f)
	defer func() {
		// Why in this order: the last writeback starts before the wait for
		// the hashes, so the disk works while they finish.
		wb.finish(err == nil)
		ls.wait() // so every hash is complete and no goroutine leaks
		if werr := wb.wait(); err == nil && werr != nil {
			err = fmt.Errorf("%s: %w", f.Name(), noSpace(werr))
		}
		if err == nil {
			d, err = h.finish()
		}
	}()
	n, err = pump(ctx, r, size, ls, func(b []byte, upto int64) error {
		if _, werr := f.Write(b); werr != nil {
			return fmt.Errorf("write %s: %w", f.Name(), noSpace(werr))
		}
		wb.advance(upto)
		if progress != nil {
			progress(upto)
		}
		return nil
	})
	if err != nil {
		return d, n, err
	}
	if size >= 0 {
		if err := checkLength(r, n, size, trailing); err != nil {
			return d, n, err
		}
	}
	return d, n, nil
}

// pump reads r (size bytes, or to its end when size < 0) into the lanes'
// buffers and gives each chunk to the lanes' hashes and to put, with the
// count of bytes read once it is done (upto). It returns the bytes read and
// put: an error of put leaves its chunk out.
func pump(ctx context.Context, r io.Reader, size int64, ls *lanes, put func(b []byte, upto int64) error) (n int64, err error) {
	for size < 0 || n < size {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("copy cancelled after %d bytes: %w", n, err)
		}
		buf := ls.buffer()
		want := int64(len(buf))
		if size >= 0 {
			want = min(want, size-n)
		}
		nr, rerr := io.ReadFull(r, buf[:want])
		if nr > 0 {
			ls.hash(buf[:nr])
			if err := put(buf[:nr], n+int64(nr)); err != nil {
				return n, err
			}
			n += int64(nr)
		} else {
			ls.unused(buf)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("read input after %d bytes: %w", n, rerr)
		}
	}
	return n, nil
}

// lanes hash a stream of chunks with several hashes at once, each on a
// goroutine of its own that takes every chunk in order. Chunks come from a
// pool of hashBufs buffers of copyBuf bytes: a buffer is reused once every
// hash has it, so memory stays bounded and a slow hash holds the feeder back.
type lanes struct {
	todo []chan []byte
	done []chan []byte
	used int
}

func startLanes(ws []io.Writer) *lanes {
	l := &lanes{}
	for _, w := range ws {
		todo, done := make(chan []byte, hashBufs), make(chan []byte, hashBufs)
		l.todo, l.done = append(l.todo, todo), append(l.done, done)
		go func() {
			for b := range todo {
				_, _ = w.Write(b) // hashes do not fail
				done <- b
			}
			close(done)
		}()
	}
	return l
}

// buffer returns a copyBuf-byte buffer to fill and pass to hash (or unused).
func (l *lanes) buffer() []byte {
	if l.used < hashBufs {
		l.used++
		return make([]byte, copyBuf)
	}
	var b []byte
	for _, d := range l.done {
		b = <-d // the same chunk from each lane: they hash in order
	}
	return b[:cap(b)]
}

// hash gives every hash b (a buffer from buffer, maybe shortened).
func (l *lanes) hash(b []byte) {
	for _, t := range l.todo {
		t <- b
	}
}

// unused returns a buffer that was not filled.
func (l *lanes) unused(b []byte) { l.used-- }

// wait ends the lanes once they have hashed what they were given.
func (l *lanes) wait() {
	for i, t := range l.todo {
		close(t)
		for range l.done[i] {
		}
	}
}

// checkLength decides whether an input announced as size bytes, and
// trailing bytes that are not the image after them, really had exactly
// that many.
func checkLength(r io.Reader, n, size, trailing int64) error {
	if n < size {
		return fmt.Errorf("%w: got %d of %d bytes", ErrShortRead, n, size)
	}
	if k, _ := io.CopyN(io.Discard, r, trailing); k < trailing {
		return fmt.Errorf("%w: got %d of the %d bytes after the image", ErrShortRead, k, trailing)
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		return fmt.Errorf("%w: more than %d bytes", ErrInputTooLong, size+trailing)
	}
	return nil
}

// noSpace adds ErrNoSpace to an ENOSPC/EDQUOT error so callers need one test.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func isRegular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}
