package squash

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"

	"github.com/overlayupd/overlayupd/verity"
)

// withTree says whether Stage appends the dm-verity tree; the bench turns it
// off to measure what the tree costs against the copy alone, in one run.
var withTree = true

// digests are what Stage computes over the image bytes while it copies them.
type digests struct {
	sum  [32]byte    // sha256, what users compare with sha256sum
	tree verity.Tree // the dm-verity hash tree (when withTree)
}

// imageHash is what Stage computes over the image as it is copied: its
// sha256 and, with the tree on, its dm-verity tree. Each is a writer of its
// own, so that each hashes on a goroutine of its own (lanes): on two cores the
// sha256 and the tree run at once, beside the copy. Why from the copied
// stream rather than a second read of the staged file: the copy's writeback
// drops the file's pages from the cache, so a second read would come from
// the disk, and the tree would cost as much as the copy. Bytes that reach
// the disk other than they were hashed are not hidden by this: dm-verity
// refuses them at boot.
type imageHash struct {
	sha  hash.Hash // nil: not computed (a signed digest gives it)
	tree *verity.Builder
}

// newImageHash starts the digests of an image of size bytes (-1: not
// known) staged into f. With the size known, the tree's level 0 is written
// into f, at its place after the image, as it fills
// (verity.NewSpillingBuilder): apply's memory then stays flat with the
// image's size.
//
// With noSum the sha256 is not computed: a signed digest (Options.Expect)
// states it, and the tree's root, which is computed, binds the bytes to it.
func newImageHash(size int64, f *os.File, noSum bool) *imageHash {
	h := &imageHash{}
	if !noSum {
		h.sha = sha256.New()
	}
	switch {
	case !withTree:
	case size > 0:
		h.tree = verity.NewSpillingBuilder(nil, size, f, int64(verity.DataBlocks(size))*verity.BlockSize)
	default:
		h.tree = verity.NewBuilder(nil, size)
	}
	return h
}

// writers are the hashes to feed, each every byte in order; extra, when
// not nil, is one more (a signature's).
func (h *imageHash) writers(extra io.Writer) []io.Writer {
	var ws []io.Writer
	if h.sha != nil {
		ws = append(ws, h.sha)
	}
	if h.tree != nil {
		ws = append(ws, h.tree)
	}
	if extra != nil {
		ws = append(ws, extra)
	}
	return ws
}

// finish returns the digests of everything written; call it once every
// writer has all the bytes.
func (h *imageHash) finish() (d digests, err error) {
	if h.sha != nil {
		copy(d.sum[:], h.sha.Sum(nil))
	}
	if h.tree == nil {
		return d, nil
	}
	if d.tree, err = h.tree.Tree(); errors.Is(err, verity.ErrEmpty) {
		return d, fmt.Errorf("%w: %w", ErrShortRead, err)
	} else if err != nil {
		return d, noSpace(err)
	}
	return d, nil
}

// appendTree writes the tree and its trailer after the n image bytes of f
// (see package verity for the layout).
func appendTree(f *os.File, d digests, n int64) error {
	if !withTree {
		return nil
	}
	if _, err := verity.Append(f, d.tree, n); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), noSpace(err))
	}
	return nil
}

// treeOverhead is what the tree adds to an image of size bytes.
func treeOverhead(size int64) int64 {
	if !withTree || size <= 0 {
		return 0
	}
	return verity.Overhead(size)
}

// syscallNonblockNofollow opens a store entry without following a link or
// blocking on a FIFO planted under its name.
const syscallNonblockNofollow = syscall.O_NONBLOCK | syscall.O_NOFOLLOW

// ImageSize is the size of the image in the file at path: the bytes before
// its dm-verity tree when it has one (a store entry), else the file's size.
func ImageSize(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNonblockNofollow, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return imageSizeOf(f)
}

func imageSizeOf(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: %w", f.Name(), ErrNotFile)
	}
	n, err := ImageExtent(f, fi.Size())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return n, nil
}

// ImageSum is the sha256 of the image in the file at path: of its bytes
// before the dm-verity tree, so that a store entry has the digest of the
// file that was applied.
func ImageSum(path string) (sum [32]byte, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNonblockNofollow, 0)
	if err != nil {
		return sum, fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	n, err := imageSizeOf(f)
	if err != nil {
		return sum, fmt.Errorf("checksum: %w", err)
	}
	adviseSequential(f)
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(f, n), make([]byte, copyBuf)); err != nil {
		return sum, fmt.Errorf("checksum %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// Verity reads the dm-verity trailer of the store entry at path.
func Verity(path string) (verity.Trailer, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNonblockNofollow, 0)
	if err != nil {
		return verity.Trailer{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return verity.Trailer{}, err
	}
	return verity.ReadTrailer(f, fi.Size())
}

// ImageExtent is how many of the size bytes of the file f are its image:
// all of them, unless f ends in a dm-verity trailer (a store's entry, or
// one copied out), whose image is its first Trailer.ImageSize bytes. Why
// apply and digest need it: the old tree hashed as image bytes gave
// another sha256 than the image's (a signed digest did not match) and
// staged the old tree before the new one. A trailer that is there but
// damaged or describes another size is verity.ErrBadTrailer: where the
// image ends is not known then.
func ImageExtent(f io.ReaderAt, size int64) (int64, error) {
	t, err := verity.ReadTrailer(f, size)
	switch {
	case err == nil:
		return t.ImageSize, nil
	case errors.Is(err, verity.ErrNoTrailer):
		return size, nil
	}
	return 0, err
}

// extentHoldsImage checks that the first size bytes of f hold the whole
// squashfs image its superblock describes (bytes_used): a trailer may say
// the image ends before it does.
func extentHoldsImage(f io.ReaderAt, size int64) error {
	b := make([]byte, SuperblockSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("read the superblock: %w", err)
	}
	sb, err := ParseSuperblock(b)
	if err != nil {
		return err
	}
	if int64(sb.BytesUsed) > size {
		return fmt.Errorf("%w: the image says it is %d bytes, its file holds %d before its dm-verity tree", ErrTruncated, sb.BytesUsed, size)
	}
	return nil
}

// Digest reads the image file at path once and returns what a signed
// digest states of it (trust.Digest): its size, sha256 and dm-verity root
// hash, the tree as Stage makes it. progress, if set, gets the bytes read.
// Of a store's entry, the image without its tree (ImageExtent).
func Digest(ctx context.Context, path string, progress func(int64)) (Expected, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNonblockNofollow, 0)
	if err != nil {
		return Expected{}, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Expected{}, fmt.Errorf("digest: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Expected{}, fmt.Errorf("digest %s: %w", path, ErrNotFile)
	}
	adviseSequential(f)
	size, err := ImageExtent(f, fi.Size())
	if err != nil {
		return Expected{}, fmt.Errorf("digest %s: %w", path, err)
	}
	if size < fi.Size() {
		// A store's entry: its trailer must not cut its image short.
		if err := extentHoldsImage(f, size); err != nil {
			return Expected{}, fmt.Errorf("digest %s: %w", path, err)
		}
	}
	h := &imageHash{sha: sha256.New(), tree: verity.NewBuilder(nil, size)}
	ls := startLanes(h.writers(nil))
	n, err := pump(ctx, f, size, ls, func(_ []byte, upto int64) error {
		if progress != nil {
			progress(upto)
		}
		return nil
	})
	ls.wait()
	if err == nil {
		err = checkLength(f, n, size, fi.Size()-size)
	}
	if err != nil {
		return Expected{}, fmt.Errorf("digest %s: %w", path, err)
	}
	d, err := h.finish()
	if err != nil {
		return Expected{}, fmt.Errorf("digest %s: %w", path, err)
	}
	return Expected{Size: n, SHA256: d.sum, Root: d.tree.Root}, nil
}
