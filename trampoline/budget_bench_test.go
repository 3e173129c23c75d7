package trampoline_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/trampoline"
)

// BenchmarkBootBudget is what the boot budget adds to a committed boot
// (issue 9 item 1): the count when the boot starts (Store.Boot: the state
// read, the decision, boots-K to boots-(K+1) and the directory fsync) and
// the good mark (Store.MarkGood: back to boots-0). Each is reported against
// its physical floor measured in the same run, interleaved, on the same
// directory: one rename plus one directory fsync. OVERLAYUPD_BENCH_DIR picks the
// filesystem (an SD card's, on a board); the default is the test's TempDir.
func BenchmarkBootBudget(b *testing.B) {
	dir := b.TempDir()
	if d := os.Getenv("OVERLAYUPD_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "budget-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	for _, n := range []string{"root.sqsh", "root.prev.sqsh", trampoline.BootCountName(0)} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s := &trampoline.Store{SlotDir: dir, Backend: trampoline.NewDirBackend(dir, ".sqsh", nil), BootBudget: trampoline.MaxBootBudget}
	a, z := filepath.Join(dir, ".floor-a"), filepath.Join(dir, ".floor-b")
	if err := os.WriteFile(a, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()

	var count, mark, floor time.Duration
	for b.Loop() {
		tf := time.Now()
		if err := os.Rename(a, z); err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		a, z = z, a
		t0 := time.Now()
		floor += t0.Sub(tf)
		p, err := s.Boot()
		if err != nil || p.Boot.Name != "root.sqsh" || len(p.Transition.Ops) != 1 {
			b.Fatalf("boot: %v, plan %s: want root.sqsh counted by one rename", err, p)
		}
		t1 := time.Now()
		if _, err := s.MarkGood(); err != nil {
			b.Fatal(err)
		}
		count, mark = count+t1.Sub(t0), mark+time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(count.Microseconds())/n, "count-µs/boot")
	b.ReportMetric(float64(mark.Microseconds())/n, "mark-µs/boot")
	b.ReportMetric(float64(floor.Microseconds())/n, "floor-µs")
	b.ReportMetric(float64(count)/float64(floor), "count/floor")
	b.ReportMetric(float64(mark)/float64(floor), "mark/floor")
}
