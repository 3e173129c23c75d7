package squash

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trust"
)

// Apply throughput (make bench, part two). Set OVERLAYUPD_BENCH_DIR to a
// directory on the store filesystem (default: the temp dir) and
// OVERLAYUPD_BENCH_MB to the image size (default 256).

func benchDir(tb testing.TB) string {
	if d := os.Getenv("OVERLAYUPD_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "squash-bench-")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return tb.TempDir()
}

func benchMB(def int) int64 {
	if n, err := strconv.Atoi(os.Getenv("OVERLAYUPD_BENCH_MB")); err == nil && n > 0 {
		return int64(n)
	}
	return int64(def)
}

// benchSource writes a random file of mb MiB (incompressible, like an image).
func benchSource(tb testing.TB, dir string, mb int64) string {
	tb.Helper()
	p := filepath.Join(dir, fmt.Sprintf("src-%d.img", mb))
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, mb<<20); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkStage is apply's copy as it was (plain: sha256 only, the kernel
// copies a file), and as apply runs it when keys are trusted (signed: the
// minisign BLAKE2b-512 of the staged bytes too, copied through memory), in
// one run so the two can be compared.
func BenchmarkStage(b *testing.B) {
	dir := benchDir(b)
	mb := benchMB(256)
	src := benchSource(b, dir, mb)
	for _, c := range []struct {
		name   string
		hash   func() io.Writer
		stream bool // copy through memory, as for stdin
	}{
		{"plain", func() io.Writer { return nil }, false},
		{"signed", func() io.Writer { return trust.NewHasher() }, false},
		{"signed-stream", func() io.Writer { return trust.NewHasher() }, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(mb << 20)
			// CPU time per copy (all threads, user and system): on a busy
			// machine it says more than the wall time.
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			defer func() {
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			}()
			for b.Loop() {
				f, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				var r io.Reader = f
				if c.stream {
					r = struct{ io.Reader }{f}
				}
				tmp, _, _, err := StageWith(context.Background(), r, mb<<20, dir, Options{Hash: c.hash()})
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				os.Remove(tmp)
			}
		})
	}
}

// BenchmarkCopyFsync is the baseline: io.Copy into a new file, then fsync.
func BenchmarkCopyFsync(b *testing.B) {
	dir := benchDir(b)
	mb := benchMB(256)
	src := benchSource(b, dir, mb)
	b.SetBytes(mb << 20)
	for b.Loop() {
		if err := copyFsync(src, filepath.Join(dir, "dst")); err != nil {
			b.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "dst"))
	}
}

func copyFsync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// TestApplyThroughput compares Stage, run in a child process so its peak RSS is
// its own, with `cp` + `sync FILE` for each size in OVERLAYUPD_BENCH_SIZES_MB
// (e.g. "256,1024"). It only runs when that variable is set.
func TestApplyThroughput(t *testing.T) {
	sizes := os.Getenv("OVERLAYUPD_BENCH_SIZES_MB")
	if sizes == "" {
		t.Skip("set OVERLAYUPD_BENCH_SIZES_MB=256,1024 to measure apply throughput")
	}
	dir := benchDir(t)
	for _, s := range strings.Split(sizes, ",") {
		mb, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		src := benchSource(t, dir, mb)
		var stage, cp []time.Duration
		var rss int64
		for range 3 {
			d, r := runStageChild(t, src, dir, mb)
			stage, rss = append(stage, d), max(rss, r)
			cp = append(cp, runCpSync(t, src, filepath.Join(dir, "cp.img")))
		}
		st, ct := median(stage), median(cp)
		mbps := func(d time.Duration) float64 { return float64(mb) / d.Seconds() }
		fmt.Printf("apply %5d MiB: stage %7.1f MiB/s (%v), cp+sync %7.1f MiB/s (%v), ratio %.2f, stage peak RSS %.1f MiB\n",
			mb, mbps(st), st.Round(time.Millisecond), mbps(ct), ct.Round(time.Millisecond), ct.Seconds()/st.Seconds(), float64(rss)/1024)
		os.Remove(src)
	}
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// runStageChild re-execs this test binary to Stage src into dir; it returns the
// wall time and the child's peak RSS in KiB.
func runStageChild(t *testing.T, src, dir string, mb int64) (time.Duration, int64) {
	cmd := testroot.SelfCommand("-test.run=^TestStageChild$")
	cmd.Env = append(os.Environ(), "SQUASH_STAGE_CHILD="+src+"|"+dir+"|"+strconv.FormatInt(mb<<20, 10))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("stage child: %v\n%s", err, out)
	}
	return d, int64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // an int32 on 32-bit ARM
}

func runCpSync(t *testing.T, src, dst string) time.Duration {
	start := time.Now()
	if out, err := exec.Command("sh", "-c", `cp "$1" "$2" && sync "$2"`, "sh", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp+sync: %v\n%s", err, out)
	}
	d := time.Since(start)
	os.Remove(dst)
	return d
}

// TestStageChild is the child half of TestApplyThroughput.
func TestStageChild(t *testing.T) {
	arg := os.Getenv("SQUASH_STAGE_CHILD")
	if arg == "" {
		t.Skip("child process of TestApplyThroughput")
	}
	parts := strings.Split(arg, "|")
	size, _ := strconv.ParseInt(parts[2], 10, 64)
	f, err := os.Open(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmp, _, _, err := Stage(context.Background(), f, size, parts[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(tmp)
}

// TestTreeCost measures what issue 11's checks add to staging an image of
// OVERLAYUPD_BENCH_MB MiB (default 256) from a file in OVERLAYUPD_BENCH_DIR:
// Stage without the dm-verity tree (today's apply before the tree), with it
// (an unsigned apply), with it and a signature's BLAKE2b-512 (an apply when
// keys are trusted and the signature is of the bytes), and with it checked
// against a signed digest (keys trusted, the signature's trusted comment is
// the digest: no sha256 pass, no BLAKE2b), round-robin in one run. It runs
// only when OVERLAYUPD_BENCH_TREE=N (rounds).
func TestTreeCost(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("OVERLAYUPD_BENCH_TREE"))
	if rounds <= 0 {
		t.Skip("set OVERLAYUPD_BENCH_TREE=N to measure what the hash tree adds to apply")
	}
	dir := benchDir(t)
	mb := benchMB(256)
	src := benchSource(t, dir, mb)
	// stage returns the wall time and the process's CPU time (user+system,
	// which includes the kernel's copy) of one Stage.
	// The signed digest of src, as 'overlayupd digest' states it.
	expect, err := Digest(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	stage := func(tree, signed, digest bool) (time.Duration, time.Duration) {
		withTree = tree
		defer func() { withTree = true }()
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var opt Options
		if signed {
			opt.Hash = trust.NewHasher()
		}
		if digest {
			opt.Expect = &expect
		}
		cpu0 := cpuTime()
		start := time.Now()
		tmp, _, _, err := StageWith(context.Background(), f, mb<<20, dir, opt)
		d, c := time.Since(start), cpuTime()-cpu0
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(tmp)
		return d, c
	}
	variants := []struct {
		name                 string
		tree, signed, digest bool
	}{
		{"without tree", false, false, false},
		{"with tree", true, false, false},
		{"tree+signature", true, true, false},
		{"tree+signed digest", true, false, true},
	}
	wall := make([][]time.Duration, len(variants))
	cpu := make([][]time.Duration, len(variants))
	for range rounds {
		for i, v := range variants {
			d, c := stage(v.tree, v.signed, v.digest)
			wall[i], cpu[i] = append(wall[i], d), append(cpu[i], c)
		}
	}
	mbps := func(d time.Duration) float64 { return float64(mb) / d.Seconds() }
	fmt.Printf("stage %d MiB, median of %d:", mb, rounds)
	for i, v := range variants {
		w := median(wall[i])
		fmt.Printf(" %s %.1f MiB/s (%v, CPU %v);", v.name, mbps(w), w.Round(time.Millisecond), median(cpu[i]).Round(time.Millisecond))
	}
	base := median(wall[0]).Seconds()
	fmt.Printf("\nstage ratios against without tree (target >= 0.9x): with tree %.2f, tree+signature %.2f, tree+signed digest %.2f\n",
		base/median(wall[1]).Seconds(), base/median(wall[2]).Seconds(), base/median(wall[3]).Seconds())
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
