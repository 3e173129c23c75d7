package squash

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

// listing is a directory's names and sizes, to prove it is unchanged.
func listing(t *testing.T, dir string) string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %v", d.Name(), fi.Size(), fi.Mode()))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// storeDir is a temp store holding a committed root, so listings are not empty.
func storeDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root"), []byte("committed"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStage(t *testing.T) {
	data := randomBytes(5<<20 + 12345)
	for _, size := range []int64{int64(len(data)), -1} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			dir := storeDir(t)
			var calls []int64
			tmp, sum, n, err := Stage(context.Background(), bytes.NewReader(data), size, dir, func(k int64) { calls = append(calls, k) })
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); sum != want {
				t.Errorf("sum = %x, want %x", sum, want)
			}
			if n != int64(len(data)) {
				t.Errorf("n = %d, want %d", n, len(data))
			}
			if filepath.Dir(tmp) != dir || !strings.HasPrefix(filepath.Base(tmp), trampoline.StagePrefix) {
				t.Errorf("tmpPath = %s, want %s/%s*", tmp, dir, trampoline.StagePrefix)
			}
			wantStaged(t, tmp, data)
			if fi, _ := os.Stat(tmp); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode = %v, want 0644", fi.Mode())
			}
			if len(calls) != 6 || calls[len(calls)-1] != n || !sort.SliceIsSorted(calls, func(i, j int) bool { return calls[i] < calls[j] }) {
				t.Errorf("progress calls = %v, want 6 increasing ending at %d", calls, n)
			}
			if s2, err := ImageSum(tmp); err != nil || s2 != sum {
				t.Errorf("ImageSum = %x, %v; want %x", s2, err, sum)
			}
		})
	}
}

// failingReader returns n bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	k, err := f.r.Read(p)
	if err == io.EOF {
		return k, f.err
	}
	return k, err
}

func TestStageFailureLeavesStoreUnchanged(t *testing.T) {
	data := randomBytes(3 << 20)
	boom := errors.New("device unplugged")
	cases := []struct {
		name   string
		r      func() io.Reader
		size   int64
		cancel bool
		free   uint64
		want   error
	}{
		{"reader error midway", func() io.Reader { return &failingReader{bytes.NewReader(data), boom} }, -1, false, 1 << 40, boom},
		{"reader error with size", func() io.Reader { return &failingReader{bytes.NewReader(data), boom} }, 8 << 20, false, 1 << 40, boom},
		{"stdin ends early", func() io.Reader { return bytes.NewReader(data) }, 4 << 20, false, 1 << 40, ErrShortRead},
		{"input longer than announced", func() io.Reader { return bytes.NewReader(data) }, 2 << 20, false, 1 << 40, ErrInputTooLong},
		{"cancelled", func() io.Reader { return bytes.NewReader(data) }, -1, true, 1 << 40, context.Canceled},
		{"no space", func() io.Reader { return bytes.NewReader(data) }, 3 << 20, false, 3<<20 + 1<<19, ErrNoSpace},
		{"no space for margin", func() io.Reader { return bytes.NewReader(data) }, 200 << 20, false, 201 << 20, ErrNoSpace},
		// A stream of unknown size: the margin is checked once it is in.
		{"stdin leaves no margin", func() io.Reader { return bytes.NewReader(data) }, -1, false, 1 << 19, ErrNoSpace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func(f func(string) (uint64, error)) { statfsFree = f }(statfsFree)
			statfsFree = func(string) (uint64, error) { return tc.free, nil }
			dir := storeDir(t)
			before := listing(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := func(int64) {
				if tc.cancel {
					cancel()
				}
			}
			tmp, _, n, err := Stage(ctx, tc.r(), tc.size, dir, progress)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Stage = %v, want %v", err, tc.want)
			}
			if tmp != "" || n != 0 {
				t.Errorf("Stage returned path %q, n %d on error", tmp, n)
			}
			if after := listing(t, dir); after != before {
				t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestSpaceMargin(t *testing.T) {
	cases := []struct {
		size int64
		free uint64
		ok   bool
	}{
		{0, 1 << 20, true},
		{0, 1<<20 - 1, false},
		{100 << 20, 101 << 20, true},
		{100 << 20, 101<<20 - 1, false},
		{1 << 30, 1<<30 + 1<<30/100, true},
		{1 << 30, 1<<30 + 1<<30/100 - 1, false},
	}
	for _, tc := range cases {
		err := checkSpace("store", tc.size, tc.free)
		if got := err == nil; got != tc.ok {
			t.Errorf("checkSpace(%d, %d) = %v, want ok=%v", tc.size, tc.free, err, tc.ok)
		}
	}
}

func TestSumMissing(t *testing.T) {
	if _, err := ImageSum(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ImageSum of missing file = %v, want ErrNotExist", err)
	}
}

// A regular file is copied by the kernel and hashed alongside; the result
// must be the same bytes and hash as the copy through memory, and a file
// shorter or longer than announced is refused with the dir left as it was.
func TestStageFromFile(t *testing.T) {
	data := randomBytes(20<<20 + 777)
	src := filepath.Join(t.TempDir(), "image.sqsh")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		size    int64
		wantErr error
	}{
		{"exact", int64(len(data)), nil},
		{"announced longer", int64(len(data)) + 1, ErrShortRead},
		{"announced shorter", int64(len(data)) - 1, ErrInputTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := storeDir(t)
			f, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var last int64
			tmp, sum, n, err := Stage(context.Background(), f, tt.size, dir, func(k int64) { last = k })
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Errorf("refused stage left %d entries in the store, want only root", len(ents))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); sum != want || n != int64(len(data)) || last != n {
				t.Errorf("sum %x n %d last progress %d; want %x %d %d", sum, n, last, want, len(data), len(data))
			}
			wantStaged(t, tmp, data)
		})
	}
}
