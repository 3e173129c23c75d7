package verity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// imageWithTree writes data plus its tree and trailer to a temp file.
func imageWithTree(t *testing.T, data []byte) (string, Trailer, Tree) {
	t.Helper()
	tree, err := Compute(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	tr, err := Append(f, tree, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return p, tr, tree
}

func TestAppendAndRead(t *testing.T) {
	for _, size := range []int{1, BlockSize, 5*BlockSize + 3, 200 * BlockSize} {
		data := randomData(size, uint64(size))
		p, tr, tree := imageWithTree(t, data)
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(raw)) != tr.FileSize() || int64(len(raw)-size) != Overhead(int64(size)) {
			t.Errorf("size %d: file %d bytes, trailer says %d, overhead %d", size, len(raw), tr.FileSize(), Overhead(int64(size)))
		}
		if !bytes.Equal(raw[:size], data) {
			t.Errorf("size %d: the image bytes changed", size)
		}
		if pad := raw[size:tr.HashOffset]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("size %d: padding is not zeros", size)
		}
		if !bytes.Equal(raw[tr.HashOffset:tr.HashOffset+int64(len(tree.Hash))], tree.Hash) {
			t.Errorf("size %d: hash area not at the hash offset", size)
		}
		got, err := ReadTrailer(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got.Root != tree.Root || got.ImageSize != int64(size) || !bytes.Equal(got.Salt, DefaultSalt) ||
			got.HashOffset != int64(DataBlocks(int64(size)))*BlockSize || got.HashBlocks != uint64(len(tree.Hash)/BlockSize) {
			t.Errorf("size %d: read back %+v", size, got)
		}
		// The whole data area (image and padding) hashes to the same root.
		again, _ := Compute(bytes.NewReader(raw[:tr.HashOffset]), nil)
		if again.Root != tree.Root {
			t.Errorf("size %d: the padded data area has another root", size)
		}
	}
}

func TestParseTrailerRefuses(t *testing.T) {
	data := randomData(10*BlockSize+5, 7)
	p, tr, _ := imageWithTree(t, data)
	raw, _ := os.ReadFile(p)
	size := int64(len(raw))
	block := raw[size-TrailerSize:]

	if _, err := ParseTrailer(make([]byte, TrailerSize), size); !errors.Is(err, ErrNoTrailer) {
		t.Errorf("zeros: %v, want ErrNoTrailer", err)
	}
	if _, err := ReadTrailer(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrNoTrailer) {
		t.Errorf("plain image: %v, want ErrNoTrailer", err)
	}
	if _, err := ParseTrailer(block, size+BlockSize); !errors.Is(err, ErrBadTrailer) {
		t.Errorf("file grown by a block: %v, want ErrBadTrailer", err)
	}
	// Every byte of the used part flipped: the magic gives ErrNoTrailer,
	// any other ErrBadTrailer (the checksum, or the checks behind it).
	for i := range trailerUsed {
		b := append([]byte(nil), block...)
		b[i] ^= 0x40
		_, err := ParseTrailer(b, size)
		want := ErrBadTrailer
		if i < len(trailerMagic) {
			want = ErrNoTrailer
		}
		if !errors.Is(err, want) {
			t.Fatalf("byte %d flipped: %v, want %v", i, err, want)
		}
	}
	// Consistent checksums over inconsistent fields are still refused.
	for name, edit := range map[string]func(*Trailer){
		"image size":  func(x *Trailer) { x.ImageSize += BlockSize },
		"hash offset": func(x *Trailer) { x.HashOffset -= BlockSize },
		"hash blocks": func(x *Trailer) { x.HashBlocks++ },
		"zero size":   func(x *Trailer) { x.ImageSize, x.DataBlocks, x.HashOffset = 0, 0, 0 },
		"huge size":   func(x *Trailer) { x.ImageSize = 1 << 62 },
	} {
		x := tr
		edit(&x)
		if _, err := ParseTrailer(x.Marshal(), size); !errors.Is(err, ErrBadTrailer) {
			t.Errorf("%s: %v, want ErrBadTrailer", name, err)
		}
	}
}

func TestTable(t *testing.T) {
	tr := Trailer{ImageSize: 130*BlockSize - 10, DataBlocks: 130, HashOffset: 130 * BlockSize, HashBlocks: 3, Salt: []byte{0xab, 0xcd}}
	tr.Root[0], tr.Root[31] = 0x12, 0xef
	start, sectors, target, params := tr.Table("7:3")
	want := "1 7:3 7:3 4096 4096 130 130 sha256 12000000000000000000000000000000000000000000000000000000000000ef abcd"
	if start != 0 || sectors != 130*8 || target != "verity" || params != want {
		t.Errorf("Table = %d %d %s %q\nwant  0 1040 verity %q", start, sectors, target, params, want)
	}
}

func FuzzParseTrailer(f *testing.F) {
	tree, _ := Compute(bytes.NewReader(randomData(3*BlockSize, 1)), nil)
	tr, _ := NewTrailer(tree, 3*BlockSize)
	f.Add(tr.Marshal(), tr.FileSize())
	f.Add(make([]byte, TrailerSize), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		got, err := ParseTrailer(b, size)
		if err == nil && got.FileSize() != size {
			t.Fatalf("accepted a trailer for %d bytes in a file of %d", got.FileSize(), size)
		}
	})
}
