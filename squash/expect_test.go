package squash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/verity"
)

// TestStageExpectSourceChangedMidCopy: with a signed digest (Expect), a
// source file written to during the copy must be refused: the tree checked
// against the digest must be of the bytes staged, never of a second read of
// the source. The source is changed near its end once the copy is past its
// first chunk and a hasher of the source (as an unsigned apply's, beside
// copy_file_range) had time to read all of it: such a tree has the signed
// bytes, and the copy then copies the new ones.
func TestStageExpectSourceChangedMidCopy(t *testing.T) {
	data := randomBytes(20<<20 + 777)
	src, f := sourceFile(t, data)
	expect, err := Digest(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := storeDir(t)
	before := listing(t, dir)
	progress, changed := changeNearEndOnce(t, src, int64(len(data)))
	tmp, sum, _, err := StageWith(context.Background(), f, int64(len(data)), dir, Options{Progress: progress, Expect: &expect})
	if !*changed {
		t.Fatal("the source was never changed mid-copy: the test proves nothing")
	}
	if err == nil {
		// The changed block was copied after the change: what is staged
		// is not what was signed.
		got, _ := os.ReadFile(tmp)
		t.Fatalf("staged bytes other than the signed ones (the same: %v), accepted with the digest's sha256 %x", bytes.Equal(got[:len(data)], data), sum)
	}
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("err = %v, want ErrDigestMismatch", err)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("a refused stage changed the store:\n%s\nwas\n%s", after, before)
	}
}

// TestStageExpectSizes: at sizes around the tree's block and level
// boundaries, the image whose digest is signed stages, from a file (the
// kernel's copy) and from a stream of unknown size, and with the root hash
// equal, bytes of another size are refused: zero bytes appended within the
// last block (the tree pads it with zeros), and the level-0 hash block of
// an image given as the data of a one-block image (the same root hash).
// Every refusal leaves the directory as it was.
func TestStageExpectSizes(t *testing.T) {
	const bs = verity.BlockSize
	for _, size := range []int{1, 64, bs - 1, bs, bs + 1, 128*bs - 1, 128 * bs, 128*bs + 1, 2 * bs, 128*128*bs + 1} {
		data := randomBytes(size)
		src := filepath.Join(t.TempDir(), "image")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		expect, err := Digest(context.Background(), src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if expect.Size != int64(size) || expect.SHA256 != sha256.Sum256(data) {
			t.Fatalf("%d bytes: digest size %d sha256 %x", size, expect.Size, expect.SHA256)
		}
		stage := func(r io.Reader, n int64) (string, error) {
			dir := storeDir(t)
			before := listing(t, dir)
			tmp, sum, _, err := StageWith(context.Background(), r, n, dir, Options{Expect: &expect})
			if err != nil {
				if after := listing(t, dir); after != before {
					t.Errorf("%d bytes: a refused stage changed the store:\n%s\nwas\n%s", size, after, before)
				}
				return "", err
			}
			if sum != expect.SHA256 {
				t.Errorf("%d bytes: sum %x, want the digest's", size, sum)
			}
			return tmp, nil
		}
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := stage(f, int64(size))
		f.Close()
		if err != nil {
			t.Fatalf("%d bytes from a file: %v", size, err)
		}
		wantStaged(t, tmp, data)
		if tmp, err = stage(bytes.NewReader(data), -1); err != nil {
			t.Fatalf("%d bytes from a stream: %v", size, err)
		}
		wantStaged(t, tmp, data)

		// The last byte changed: the same size, another root, refused once
		// the copy is done (past 128 blocks, after level 0 was spilled
		// into the staged file), from a file and from a stream.
		flipped := append([]byte{}, data...)
		flipped[size-1] ^= 1
		if err := os.WriteFile(src, flipped, 0o644); err != nil {
			t.Fatal(err)
		}
		if f, err = os.Open(src); err != nil {
			t.Fatal(err)
		}
		_, err = stage(f, int64(size))
		f.Close()
		if !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("%d bytes, the last one changed, from a file: %v, want ErrDigestMismatch", size, err)
		}
		if _, err := stage(bytes.NewReader(flipped), int64(size)); !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("%d bytes, the last one changed, from a stream: %v, want ErrDigestMismatch", size, err)
		}

		var others [][]byte
		if size%bs != 0 {
			// A zero byte more: the same padded block, the same root.
			others = append(others, append(append([]byte{}, data...), 0))
		}
		if size > bs && size <= 128*bs {
			// The level-0 hash block's digests as a one-block image.
			tree, err := verity.Compute(bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, bytes.TrimRight(tree.Hash, "\x00"))
		}
		for _, o := range others {
			tree, err := verity.Compute(bytes.NewReader(o), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tree.Root != expect.Root {
				t.Fatalf("%d bytes: the %d-byte other image has another root: the test proves nothing", size, len(o))
			}
			if _, err := stage(bytes.NewReader(o), -1); !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrInputTooLong) {
				t.Errorf("%d bytes: %d other bytes with the same root, from a stream: %v, want a refusal", size, len(o), err)
			}
			if _, err := stage(bytes.NewReader(o), int64(len(o))); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("%d bytes: %d other bytes with the same root, size known: %v, want ErrDigestMismatch", size, len(o), err)
			}
		}
	}
}

// TestStageHashSourceChangedMidCopy: the same for a signature of the bytes
// (Options.Hash, minisign's BLAKE2b): what the hash is given is exactly what
// is staged, also when the source changes during the copy.
func TestStageHashSourceChangedMidCopy(t *testing.T) {
	data := randomBytes(20<<20 + 777)
	src, f := sourceFile(t, data)
	progress, changed := changeNearEndOnce(t, src, int64(len(data)))
	hashed := sha256.New()
	tmp, _, n, err := StageWith(context.Background(), f, int64(len(data)), storeDir(t), Options{Progress: progress, Hash: hashed})
	if err != nil {
		t.Fatal(err)
	}
	if !*changed {
		t.Fatal("the source was never changed mid-copy: the test proves nothing")
	}
	staged, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(staged[:n])
	if got := hashed.Sum(nil); !bytes.Equal(got, want[:]) {
		orig := sha256.Sum256(data)
		t.Errorf("the signature's hash saw other bytes than the staged ones (the original source's: %v)", bytes.Equal(got, orig[:]))
	}
}

// sourceFile writes data to a file of its own and opens it (closed at the
// end of the test): the source of a stage that a test changes mid-copy.
func sourceFile(t *testing.T, data []byte) (string, *os.File) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "image.sqsh")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return src, f
}

// changeNearEndOnce returns a Stage progress callback that, the first time
// it is called before the copy's last 8 KiB, waits half a second (so that
// anything reading the source beside the copy reads all of it meanwhile)
// and then overwrites a block near the end of the size-byte file src; the
// bool says whether it did.
func changeNearEndOnce(t *testing.T, src string, size int64) (func(int64), *bool) {
	t.Helper()
	changed := new(bool)
	return func(k int64) {
		if *changed || k >= size-8192 {
			return
		}
		time.Sleep(500 * time.Millisecond)
		if w, err := os.OpenFile(src, os.O_WRONLY, 0); err != nil {
			t.Error(err)
		} else {
			_, err := w.WriteAt(bytes.Repeat([]byte{0xee}, 4096), size-8192)
			w.Close()
			if err != nil {
				t.Error(err)
			}
		}
		*changed = true
	}, changed
}

// TestStageSourceChangedMidCopy: an unsigned stage from a file, which the
// kernel copies while the hashes read the source beside it, is refused
// when the source is written to during the copy: the staged bytes and the
// hashed ones may differ, and the recorded sha256 and tree would not be
// the staged file's. Nothing is left in the store.
func TestStageSourceChangedMidCopy(t *testing.T) {
	data := randomBytes(48 << 20)
	src, f := sourceFile(t, data)
	dir := storeDir(t)
	before := listing(t, dir)
	progress, changed := changeNearEndOnce(t, src, int64(len(data)))
	_, _, _, err := StageWith(context.Background(), f, int64(len(data)), dir, Options{Progress: progress})
	if !*changed {
		t.Fatal("the source was never changed mid-copy: the test proves nothing")
	}
	if !errors.Is(err, ErrInputChanged) {
		t.Errorf("err = %v, want ErrInputChanged", err)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("a refused stage changed the store:\n%s\nwas\n%s", after, before)
	}
}
