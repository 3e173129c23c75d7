package squash

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStageExpectSourceChangedMidCopy: with a signed digest (Expect) and a
// source file the kernel copies (copy_file_range), a source written to
// during the copy must be refused: the tree checked against the digest
// must be of the bytes staged, never of a second read of the source. The
// source is changed near its end once the copy is past its first chunk
// and a hasher of the source had time to read all of it: such a tree has
// the signed bytes, and the copy then copies the new ones.
func TestStageExpectSourceChangedMidCopy(t *testing.T) {
	data := randomBytes(20<<20 + 777)
	src := filepath.Join(t.TempDir(), "image.sqsh")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expect, err := Digest(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := storeDir(t)
	before := listing(t, dir)
	changed := false
	progress := func(k int64) {
		if changed || k >= int64(len(data))-8192 {
			return
		}
		time.Sleep(500 * time.Millisecond) // a tree of the source reads all of it meanwhile
		w, err := os.OpenFile(src, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close()
		if _, err := w.WriteAt(bytes.Repeat([]byte{0xee}, 4096), int64(len(data))-8192); err != nil {
			t.Error(err)
		}
		changed = true
	}
	tmp, sum, _, err := StageWith(context.Background(), f, int64(len(data)), dir, Options{Progress: progress, Expect: &expect})
	if !changed {
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
