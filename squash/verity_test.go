package squash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/overlayupd/overlayupd/verity"
)

// wantStaged checks a staged file: the image bytes, then the dm-verity tree
// of exactly those bytes and its trailer; the image's size and sha256 are
// the applied file's.
func wantStaged(t *testing.T, tmp string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(data) || !bytes.Equal(got[:len(data)], data) {
		t.Fatalf("staged file does not start with the image (%d bytes, image %d)", len(got), len(data))
	}
	tree, err := verity.Compute(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := verity.ReadTrailer(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Fatalf("staged file: %v", err)
	}
	if tr.Root != tree.Root || tr.ImageSize != int64(len(data)) {
		t.Errorf("trailer: root %x for %d bytes; want %x for %d", tr.Root, tr.ImageSize, tree.Root, len(data))
	}
	if h := got[tr.HashOffset : tr.HashOffset+int64(len(tree.Hash))]; !bytes.Equal(h, tree.Hash) {
		t.Errorf("the staged hash area differs from the tree of the image")
	}
	if n, err := ImageSize(tmp); err != nil || n != int64(len(data)) {
		t.Errorf("ImageSize = %d, %v; want %d", n, err, len(data))
	}
	if s, err := ImageSum(tmp); err != nil || s != sha256.Sum256(data) {
		t.Errorf("ImageSum = %x, %v; want the image's sha256", s, err)
	}
}

// TestStageTreeOff: with the tree off (the bench's baseline), the staged
// file is the image alone, and its size and digest are still the image's.
func TestStageTreeOff(t *testing.T) {
	withTree = false
	defer func() { withTree = true }()
	data := randomBytes(1<<20 + 7)
	tmp, sum, n, err := Stage(context.Background(), bytes.NewReader(data), -1, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(tmp)
	if !bytes.Equal(got, data) || n != int64(len(data)) || sum != sha256.Sum256(data) {
		t.Errorf("staged %d bytes (n %d), want the %d image bytes alone", len(got), n, len(data))
	}
	if s, err := ImageSum(tmp); err != nil || s != sum {
		t.Errorf("ImageSum of a file without a tree = %x, %v; want %x", s, err, sum)
	}
}

// TestStageEmpty: an empty stream has no tree and stages nothing.
func TestStageEmpty(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := Stage(context.Background(), bytes.NewReader(nil), -1, dir, nil); err == nil {
		t.Fatal("an empty stream was staged")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files", len(ents))
	}
}

// TestStageStoreEntry: a staged file given back as the input (a store's
// entry copied out) stages its image alone: ImageExtent finds the image's
// end in its trailer, and Trailing keeps the old tree out of the copy and
// the hashes, by the kernel's copy and through memory alike; a file whose
// tail is longer than announced is refused.
func TestStageStoreEntry(t *testing.T) {
	data := randomBytes(3<<20 + 123)
	entry, _, _, err := Stage(context.Background(), bytes.NewReader(data), int64(len(data)), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(entry)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	size, err := ImageExtent(f, fi.Size())
	if err != nil || size != int64(len(data)) {
		t.Fatalf("ImageExtent = %d, %v; want %d (file %d)", size, err, len(data), fi.Size())
	}
	if n, err := ImageExtent(bytes.NewReader(data), int64(len(data))); err != nil || n != int64(len(data)) {
		t.Errorf("ImageExtent of a file without a trailer = %d, %v; want its size %d", n, err, len(data))
	}
	// A damaged trailer does not say where the image ends: refused, not
	// taken for image bytes.
	whole, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	whole[len(whole)-verity.TrailerSize+50] ^= 1
	if _, err := ImageExtent(bytes.NewReader(whole), int64(len(whole))); !errors.Is(err, verity.ErrBadTrailer) {
		t.Errorf("ImageExtent with a damaged trailer: %v, want ErrBadTrailer", err)
	}
	for _, memory := range []bool{false, true} {
		for _, c := range []struct {
			trailing int64
			want     error
		}{{fi.Size() - size, nil}, {fi.Size() - size - 1, ErrInputTooLong}} {
			_, err := f.Seek(0, io.SeekStart)
			if err != nil {
				t.Fatal(err)
			}
			opt := Options{Trailing: c.trailing}
			if memory {
				opt.Hash = io.Discard
			}
			tmp, sum, n, err := StageWith(context.Background(), f, size, t.TempDir(), opt)
			if !errors.Is(err, c.want) {
				t.Fatalf("memory %v, trailing %d: %v, want %v", memory, c.trailing, err, c.want)
			}
			if err != nil {
				continue
			}
			if sum != sha256.Sum256(data) || n != int64(len(data)) {
				t.Errorf("memory %v: staged %d bytes, sum %x; want the image's", memory, n, sum)
			}
			wantStaged(t, tmp, data)
		}
	}
}
