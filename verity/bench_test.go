package verity

import (
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkTree builds the tree of 64 MiB (the hashing only: the bytes are
// in memory) and, in the same run, hashes the same bytes with plain sha256,
// alternating the two. It reports both speeds and tree/sha256: the tree
// hashes each 4 KiB block with a 32-byte salt in front (0.8% more bytes),
// plus the upper levels (1/128 more), so it cannot beat sha256 on one core.
func BenchmarkTree(b *testing.B) {
	data := randomData(64<<20, 42)
	var tTree, tSHA time.Duration
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		start := time.Now()
		bl := NewBuilder(nil, int64(len(data)))
		bl.Write(data)
		if _, err := bl.Tree(); err != nil {
			b.Fatal(err)
		}
		tTree += time.Since(start)

		start = time.Now()
		h := sha256.New()
		h.Write(data)
		h.Sum(nil)
		tSHA += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(len(data)) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(tTree), "tree-MiB/s")
	b.ReportMetric(mbps(tSHA), "sha256-MiB/s")
	b.ReportMetric(tSHA.Seconds()/tTree.Seconds(), "tree/sha256")
}
