package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// randomData is n reproducible pseudo-random bytes.
func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestLevelBlocks(t *testing.T) {
	cases := []struct {
		blocks uint64
		want   []uint64
	}{
		{1, nil},
		{2, []uint64{1}},
		{128, []uint64{1}},
		{129, []uint64{2, 1}},
		{128 * 128, []uint64{128, 1}},
		{128*128 + 1, []uint64{129, 2, 1}},
		{1 << 40, []uint64{1 << 33, 1 << 26, 1 << 19, 1 << 12, 1 << 5, 1}},
		{1<<64 - 1, []uint64{1 << 57, 1 << 50, 1 << 43, 1 << 36, 1 << 29, 1 << 22, 1 << 15, 1 << 8, 2, 1}},
	}
	for _, tc := range cases {
		if got := LevelBlocks(tc.blocks); !slices.Equal(got, tc.want) {
			t.Errorf("LevelBlocks(%d) = %v, want %v", tc.blocks, got, tc.want)
		}
	}
}

// TestTreeSmall checks the tree of two data blocks by hand: one level-0
// block holding their two digests, zero-padded, whose digest is the root.
func TestTreeSmall(t *testing.T) {
	data := randomData(2*BlockSize, 1)
	salt := []byte("salt")
	d := func(b []byte) []byte { s := sha256.Sum256(append(append([]byte(nil), salt...), b...)); return s[:] }
	level0 := make([]byte, BlockSize)
	copy(level0, d(data[:BlockSize]))
	copy(level0[DigestSize:], d(data[BlockSize:]))
	tree, err := Compute(bytes.NewReader(data), salt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tree.Hash, level0) {
		t.Errorf("hash area differs from the hand-made level 0")
	}
	if got, want := tree.Root[:], d(level0); !bytes.Equal(got, want) {
		t.Errorf("root %x, want %x", got, want)
	}
	one, err := Compute(bytes.NewReader(data[:100]), salt)
	if err != nil {
		t.Fatal(err)
	}
	padded := append(append([]byte(nil), data[:100]...), make([]byte, BlockSize-100)...)
	if len(one.Hash) != 0 || !bytes.Equal(one.Root[:], d(padded)) || one.DataBlocks != 1 {
		t.Errorf("one block: %d hash bytes, root %x, %d blocks; want 0, %x, 1", len(one.Hash), one.Root, one.DataBlocks, d(padded))
	}
	if _, err := Compute(bytes.NewReader(nil), nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty input: %v, want ErrEmpty", err)
	}
}

// TestBuilderChunks: the tree does not depend on how the data is written.
func TestBuilderChunks(t *testing.T) {
	data := randomData(300*BlockSize+1234, 2)
	want, err := Compute(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	// The size hint sizes the digests in advance; a wrong hint must not
	// change the tree.
	hints := []int64{int64(len(data)), int64(len(data)), int64(len(data)) + 5*BlockSize, int64(len(data)) - 5*BlockSize, 0}
	for round, hint := range hints {
		b := NewBuilder(nil, hint)
		writeChunks(b, data, r)
		got, err := b.Tree()
		if err != nil {
			t.Fatal(err)
		}
		if got.Root != want.Root || !bytes.Equal(got.Hash, want.Hash) || got.DataBlocks != want.DataBlocks {
			t.Fatalf("round %d (size hint %d): random chunks give root %x, one pass %x", round, hint, got.Root, want.Root)
		}
	}
}

var reRoot = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]{64})$`)

// TestMatchesVeritysetup proves the tree against the real tool:
// `veritysetup format --no-superblock` over the same bytes (zero-padded to
// whole blocks, as the tree treats them) must give the same root hash and
// the same hash area, byte for byte.
func TestMatchesVeritysetup(t *testing.T) {
	testroot.NeedTools(t, "veritysetup")
	tool, _ := testroot.LookTool("veritysetup")
	cases := []struct {
		name string
		size int
	}{
		{"one block", BlockSize},
		{"less than a block", 1000},
		{"not a multiple of 4 KiB", 1000000},
		{"one full level-0 block", 128 * BlockSize},
		{"two levels", 129*BlockSize + 17},
		{"three levels", (128*128 + 1) * BlockSize},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := randomData(tc.size, uint64(10+i))
			tree, err := Compute(bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			img, hashFile := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
			padded := append(data, make([]byte, int(DataBlocks(int64(tc.size)))*BlockSize-tc.size)...)
			if err := os.WriteFile(img, padded, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tool, "format", "--no-superblock", "--format=1", "--hash=sha256",
				"--data-block-size=4096", "--hash-block-size=4096", "--salt="+hex.EncodeToString(DefaultSalt), img, hashFile).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup: %v\n%s", err, out)
			}
			m := reRoot.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no root hash in veritysetup's output:\n%s", out)
			}
			if got := hex.EncodeToString(tree.Root[:]); got != string(m[1]) {
				t.Errorf("root hash %s, veritysetup %s", got, m[1])
			}
			want, err := os.ReadFile(hashFile)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tree.Hash, want) {
				t.Errorf("hash area: %d bytes, veritysetup %d; first difference at %d", len(tree.Hash), len(want), firstDiff(tree.Hash, want))
			}
			if !strings.Contains(string(out), "Data blocks:") {
				t.Logf("veritysetup output:\n%s", out)
			}
			t.Logf("%d bytes, %d data blocks, %d hash blocks, root %x", tc.size, tree.DataBlocks, len(tree.Hash)/BlockSize, tree.Root)
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRootIsPureFunctionOfBytes: the default salt makes the root hash
// depend on the bytes alone, and any changed byte changes it.
func TestRootIsPureFunctionOfBytes(t *testing.T) {
	data := randomData(200*BlockSize, 5)
	a, _ := Compute(bytes.NewReader(data), nil)
	b, _ := Compute(bytes.NewReader(append([]byte(nil), data...)), nil)
	if a.Root != b.Root {
		t.Fatal("two computations of the same bytes differ")
	}
	for _, off := range []int{0, BlockSize - 1, 150 * BlockSize, len(data) - 1} {
		changed := append([]byte(nil), data...)
		changed[off] ^= 1
		c, _ := Compute(bytes.NewReader(changed), nil)
		if c.Root == a.Root {
			t.Errorf("flipping byte %d leaves the root hash unchanged", off)
		}
	}
}

// memFile is an io.WriterAt in memory that grows as written; fail, when
// set, is every write's error.
type memFile struct {
	b    []byte
	fail error
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if m.fail != nil {
		return 0, m.fail
	}
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// TestSpillingBuilder: a tree whose level 0 is written out as it fills
// gives, once appended, the very file of a tree built in memory, whatever
// the size and however the data is written; data of another size than
// laid out, or a failed write, is Tree's error.
func TestSpillingBuilder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i, size := range []int{1, BlockSize, 2 * BlockSize, 128 * BlockSize, 129*BlockSize + 17, 300*BlockSize + 1234, 128 * 128 * BlockSize, (128*128 + 1) * BlockSize} {
		data := randomData(size, uint64(100+i))
		want, err := Compute(bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		var inMem memFile
		if _, err := Append(&inMem, want, int64(size)); err != nil {
			t.Fatal(err)
		}
		var spilled memFile
		b := NewSpillingBuilder(nil, int64(size), &spilled, int64(DataBlocks(int64(size)))*BlockSize)
		writeChunks(b, data, r)
		got, err := b.Tree()
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if _, err := Append(&spilled, got, int64(size)); err != nil {
			t.Fatalf("%d bytes: append: %v", size, err)
		}
		if got.Root != want.Root || !bytes.Equal(spilled.b[size:], inMem.b[size:]) {
			t.Errorf("%d bytes: root %x, file %d bytes after the image; want %x, %d bytes (first difference at %d)",
				size, got.Root, len(spilled.b)-size, want.Root, len(inMem.b)-size, firstDiff(spilled.b[size:], inMem.b[size:]))
		}
		if size > 2*BlockSize && got.Spilled == 0 {
			t.Errorf("%d bytes: nothing spilled", size)
		}
	}

	data := randomData(500*BlockSize, 7)
	short := NewSpillingBuilder(nil, int64(len(data))+BlockSize, &memFile{}, 0)
	short.Write(data)
	if _, err := short.Tree(); err == nil {
		t.Error("data shorter than laid out: no error")
	}
	boom := errors.New("disk full")
	failing := NewSpillingBuilder(nil, int64(len(data)), &memFile{fail: boom}, 0)
	failing.Write(data)
	if _, err := failing.Tree(); !errors.Is(err, boom) {
		t.Errorf("a failed spill: Tree = %v, want %v", err, boom)
	}
}

// writeChunks writes data to b in random chunks of 1 byte to 3 blocks.
func writeChunks(b *Builder, data []byte, r *rand.Rand) {
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.IntN(3*BlockSize))
		b.Write(p[:n])
		p = p[n:]
	}
}
