package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/squash/inspect"
	"github.com/overlayupd/overlayupd/verity"
)

// checkImage refuses, before anything is locked or written, an image path
// that cannot be a bootable root: missing, a directory, or failing
// inspect.Validate. The error says what is wrong and what to do.
func checkImage(path string, machines []uint16) (squash.Info, error) {
	if err := checkImageFile(path); err != nil {
		return squash.Info{}, err
	}
	info, err := inspect.Validate(path, machines)
	if err != nil {
		return info, imageError(err)
	}
	return info, nil
}

// quickCheckImage is checkImage without the walk of the image's tree: the
// file, its superblock, bytes_used within it, a compression the kernel
// mounts. What is copied into a squashfs store is validated whole after the
// copy (stageImage), and only the copy boots: validating the source as well
// read the image's tables twice. Enough is checked here that the common
// mistakes (a wrong file, a truncated download) are refused before a byte
// is copied.
func quickCheckImage(path string) error {
	if err := checkImageFile(path); err != nil {
		return err
	}
	f, sb, _, err := squash.OpenImage(path)
	if err != nil {
		return imageError(err)
	}
	f.Close()
	if !sb.KernelMountable() {
		return imageError(fmt.Errorf("%s: %w: the kernel cannot mount %s squashfs; rebuild it with mksquashfs -comp xz, zstd or gzip", path, squash.ErrUnsupportedCompression, sb.CompressionName()))
	}
	return nil
}

// checkImageFile refuses a path that is not a regular file, with the fix.
func checkImageFile(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: check the path (or give '-' to read the image from stdin)", path)
	case err != nil:
		return fmt.Errorf("cannot read %s: %w", path, err)
	case st.IsDir():
		return fmt.Errorf("%s is a directory, not an image: make a squashfs image of it with 'mksquashfs %s root.sqsh' and give that", path, path)
	case !st.Mode().IsRegular():
		// Why refuse before opening: a FIFO without a writer blocks open(2)
		// forever, and a device is no image file.
		return fmt.Errorf("%s is a %s, not an image file: to apply from a pipe, give '-' and feed the image on stdin", path, fsmode.Kind(st.Mode()))
	}
	return nil
}

// imageError adds to a squash error what the user can do about it.
func imageError(err error) error {
	for _, h := range []struct {
		is   error
		hint string
	}{
		{squash.ErrNotSquashfs, "build the image with mksquashfs"},
		{squash.ErrBadSuperblock, "the image is damaged or not squashfs: build it again with mksquashfs"},
		{squash.ErrTruncated, "the image is incomplete (an interrupted download or copy?): fetch it again"},
		{squash.ErrShortRead, "the input ended before the image did (an interrupted download or pipe?): fetch it again"},
		{squash.ErrInputTooLong, "the file changed while it was read: try again when it is complete"},
		{squash.ErrInputChanged, "something wrote to the file while it was copied, so the staged copy and its recorded sha256 could differ: try again when nothing writes to it"},
		{squash.ErrCorrupt, "the image is damaged: fetch or build it again"},
		{squash.ErrNoInit, "a root image must contain /sbin/init, or it cannot boot: is this a root filesystem?"},
		{squash.ErrInitNotExecutable, "make /sbin/init executable (chmod 755) before building the image"},
		{squash.ErrInitWrongArch, "build the image for this board's architecture (or, preparing a store for another board, name its architecture with --arch)"},
		{squash.ErrInitNotRunnable, "an init needs its interpreter (#! line) or dynamic loader (PT_INTERP) inside the image: build the image complete"},
		{squash.ErrDanglingSymlink, "/sbin/init must lead to a file inside the image"},
		{squash.ErrSymlinkLoop, "/sbin/init must lead to a file inside the image"},
		{squash.ErrNotFile, "give an image file"},
		{verity.ErrBadTrailer, "the file ends in a damaged dm-verity tree's trailer (a store's entry, damaged): apply the image it was made from"},
		{squash.ErrNoSpace, "free space on the store's filesystem ('overlayupd gc' removes a store's failed roots and leftovers), or use a larger partition"},
	} {
		if errors.Is(err, h.is) {
			return fmt.Errorf("%w\n%s; nothing was changed", err, h.hint)
		}
	}
	return fmt.Errorf("%w\nnothing was changed", err)
}

// staged is an image copied into a slot directory under a .stage-* name.
type staged struct {
	tmp  string
	sum  [32]byte
	size int64
	info squash.Info
}

func (s staged) sha256() string { return hex.EncodeToString(s.sum[:]) }

// stageImage copies r (size bytes, -1 if unknown) into dir with squash.Stage,
// checks the signature (check, if any) against the bytes it copied, and
// validates the copy: only the copy is what will boot, and a pipe that
// ended early is only seen there. The signature comes first: the copy is
// validated (and its metadata read) only once it is known to be the signed
// bytes. On any error no file is left behind.
func stageImage(ctx context.Context, r io.Reader, size int64, dir string, machines []uint16, progress func(int64), check *sigCheck) (s staged, err error) {
	what := "the copied image"
	var trailing int64
	if f, ok := r.(*os.File); ok && size >= 0 {
		what = f.Name() + " (as copied)"
		// A store's entry copied out (or given by its path) carries its
		// old tree: the image is what comes before it.
		image, err := squash.ImageExtent(f, size)
		if err != nil {
			return staged{}, imageError(fmt.Errorf("%s: %w", f.Name(), err))
		}
		size, trailing = image, size-image
	}
	expect, want := check.expect(), size
	if expect != nil && size < 0 {
		// stdin: the signed size is what must come, so the copy can check
		// the free space first and keep its memory flat; more is a
		// mismatch, less an interrupted input.
		want = expect.Size
	}
	// A signature over a whole entry (image and tree) is not the image's.
	entryNote := func(err error) error {
		if trailing == 0 {
			return err
		}
		return fmt.Errorf("%w\n(the file is a store's entry: only its first %d bytes, the image, were checked; sign the image, not the entry with its dm-verity tree)", err, size)
	}
	s.tmp, s.sum, s.size, err = squash.StageWith(ctx, r, want, dir, squash.Options{Progress: progress, Hash: check.hash(), Expect: expect, Trailing: trailing})
	if errors.Is(err, squash.ErrDigestMismatch) || (want != size && errors.Is(err, squash.ErrInputTooLong)) {
		return staged{}, entryNote(check.mismatch(err))
	}
	if err != nil {
		return staged{}, imageError(err)
	}
	if err := check.verify(); err != nil {
		discard(s.tmp)
		return staged{}, entryNote(err)
	}
	// The staged file has the tree after the image, so its size is not the
	// image's: an input cut short by less than the tree adds passed the
	// reader's size check, the tree's first bytes read as the image's end.
	if f, sb, _, oerr := squash.OpenImage(s.tmp); oerr == nil {
		f.Close()
		if int64(sb.BytesUsed) > s.size {
			err = fmt.Errorf("%s: %w: the image says it is %d bytes, %d came", s.tmp, squash.ErrTruncated, sb.BytesUsed, s.size)
		}
	}
	if err == nil {
		s.info, err = inspect.Validate(s.tmp, machines)
	}
	if err != nil {
		discard(s.tmp)
		if size < 0 {
			what = fmt.Sprintf("the image read from stdin (%d bytes)", s.size)
		}
		return staged{}, imageError(retext{strings.ReplaceAll(err.Error(), s.tmp, what), err})
	}
	return s, nil
}

// imageTotal is what the progress of staging r, of size bytes, counts to:
// the image alone of a store's entry (stageImage leaves its old tree).
func imageTotal(r io.Reader, size int64) int64 {
	if f, ok := r.(*os.File); ok && size >= 0 {
		if n, err := squash.ImageExtent(f, size); err == nil {
			return n
		}
	}
	return size
}

// retext is err with another text: the temp file's name means nothing to
// the user once it is removed.
type retext struct {
	msg string
	err error
}

func (r retext) Error() string { return r.msg }
func (r retext) Unwrap() error { return r.err }

// discard removes a .stage-* file and makes the removal durable, best effort:
// gc removes what is left.
func discard(tmp string) {
	_ = os.Remove(tmp)
	_ = atomicfile.SyncDir(filepath.Dir(tmp))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
