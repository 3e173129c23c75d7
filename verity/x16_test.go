package verity

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func needX16(t testing.TB) {
	t.Helper()
	if !haveX16() {
		t.Skip("this CPU has no AVX-512 F and BW: blockX16 is not used here")
	}
}

// TestX16 checks the 16-lane digests against crypto/sha256's for salts of
// every length class: none, shorter than a message block, exactly one,
// longer, with the tail needing one or two blocks.
func TestX16(t *testing.T) {
	needX16(t)
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 16*BlockSize)
	for _, n := range []int{0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 128, 255, 256} {
		salt := make([]byte, n)
		for i := range salt {
			salt[i] = byte(rng.Uint32())
		}
		x := newX16(salt)
		for round := range 3 {
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if round == 2 {
				clear(p[5*BlockSize : 6*BlockSize]) // a block of zeros, as a sparse image has
			}
			out := make([]byte, 16*DigestSize)
			x.sum16(p, out)
			for l := range 16 {
				h := sha256.New()
				h.Write(salt)
				h.Write(p[l*BlockSize : (l+1)*BlockSize])
				if want := h.Sum(nil); !bytes.Equal(out[l*DigestSize:(l+1)*DigestSize], want) {
					t.Fatalf("salt of %d bytes, round %d, lane %d: got %x, want %x", n, round, l, out[l*DigestSize:(l+1)*DigestSize], want)
				}
			}
		}
	}
}

// TestBuilderWorkers: whole-buffer Writes of many sizes, at GOMAXPROCS
// values that split them unevenly (64 workers for 1121 blocks once gave the
// last worker a range that ended before it started), give the tree of one
// block at a time, with and without the 16-lane path.
func TestBuilderWorkers(t *testing.T) {
	defer func(v bool) { useX16 = v }(useX16)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 1500*BlockSize)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, blocks := range []int{64, 65, 1121, 1500} {
		want := func() Tree {
			b := NewBuilder(nil, 0)
			for i := 0; i < blocks; i++ {
				b.Write(data[i*BlockSize : (i+1)*BlockSize]) // one block a Write: no workers
			}
			tr, err := b.Tree()
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}()
		for _, procs := range []int{1, 2, 3, 35, 64} {
			for _, lanes := range []bool{false, true} {
				runtime.GOMAXPROCS(procs)
				useX16 = lanes
				b := NewBuilder(nil, 0)
				b.Write(data[:blocks*BlockSize])
				tr, err := b.Tree()
				if err != nil {
					t.Fatal(err)
				}
				if tr.Root != want.Root {
					t.Fatalf("%d blocks in one Write, GOMAXPROCS %d, 16 lanes %v: root %x, want %x", blocks, procs, lanes && haveX16(), tr.Root, want.Root)
				}
			}
		}
	}
}

// TestBuilderX16 builds trees of several sizes, in odd write sizes, with
// and without the 16-lane path, and wants the same tree.
func TestBuilderX16(t *testing.T) {
	needX16(t)
	defer func(v bool) { useX16 = v }(useX16)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{BlockSize, 17 * BlockSize, 64*BlockSize + 1, 1000*BlockSize - 7, 3 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		var trees [2]Tree
		for i, on := range []bool{false, true} {
			useX16 = on
			b := NewBuilder(nil, int64(size))
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(700*1024))
				b.Write(rest[:k])
				rest = rest[k:]
			}
			tr, err := b.Tree()
			if err != nil {
				t.Fatal(err)
			}
			trees[i] = tr
		}
		if trees[0].Root != trees[1].Root || !bytes.Equal(trees[0].Hash, trees[1].Hash) {
			t.Fatalf("%d bytes: the 16-lane tree (root %x) differs from crypto/sha256's (root %x)", size, trees[1].Root, trees[0].Root)
		}
	}
}

// BenchmarkLevel0 is level 0's hashing of 64 MiB, 16 blocks at a time,
// against the baseline, one block at a time with crypto/sha256, timed in
// the same iterations: it reports both speeds and their ratio (x16/sha256).
func BenchmarkLevel0(b *testing.B) {
	needX16(b)
	p := make([]byte, 64<<20)
	out := make([]byte, len(p)/BlockSize*DigestSize)
	h := sha256.New()
	x := newX16(DefaultSalt)
	var base, lanes time.Duration
	b.SetBytes(int64(len(p)))
	for range b.N {
		t0 := time.Now()
		for i := 0; i < len(p)/BlockSize; i++ {
			h.Reset()
			h.Write(DefaultSalt)
			h.Write(p[i*BlockSize : (i+1)*BlockSize])
			h.Sum(out[i*DigestSize : i*DigestSize])
		}
		t1 := time.Now()
		for i := 0; i < len(p)/BlockSize; i += 16 {
			x.sum16(p[i*BlockSize:(i+16)*BlockSize], out[i*DigestSize:(i+16)*DigestSize])
		}
		base, lanes = base+t1.Sub(t0), lanes+time.Since(t1)
	}
	mb := float64(len(p)*b.N) / 1e6
	b.ReportMetric(mb/base.Seconds(), "sha256-MB/s")
	b.ReportMetric(mb/lanes.Seconds(), "x16-MB/s")
	b.ReportMetric(base.Seconds()/lanes.Seconds(), "x16/sha256")
}

// TestX16Generated fails when sha256x16_amd64.s is not what its generator
// writes: the assembly is edited through internal/x16gen only.
func TestX16Generated(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // where deps.sh installs it
	}
	out := filepath.Join(t.TempDir(), "x16.s")
	if b, err := exec.Command(goTool, "run", "./internal/x16gen", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("run the generator: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("sha256x16_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sha256x16_amd64.s differs from what internal/x16gen writes: run go generate ./verity")
	}
}
