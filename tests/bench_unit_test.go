package tests

import (
	"math"
	"testing"
	"time"
)

// TestPairedRatio: a drift that moves whole rounds cancels out of the
// paired ratio, where it would not out of a ratio of medians; rounds with
// no overhead in the denominator are left out.
func TestPairedRatio(t *testing.T) {
	ms := func(v ...int) series {
		var s series
		for _, x := range v {
			s = append(s, time.Duration(x)*time.Millisecond)
		}
		return s
	}
	// Every round: a = base + 60, b = base + 100, whatever the base.
	base := ms(100, 300, 120, 500, 110)
	a := ms(160, 360, 180, 560, 170)
	b := ms(200, 400, 220, 600, 210)
	if got := pairedRatio(a, b, base); got != 0.6 {
		t.Errorf("pairedRatio = %v, want 0.6", got)
	}
	// Rounds whose overheads differ, under a drift: the paired median is
	// 0.6 (0.6, 0.9, 0.3), the ratio of the medians (160-110)/(210-110)
	// 0.5.
	base = ms(100, 400, 110)
	a = ms(160, 490, 140)
	b = ms(200, 500, 210)
	if got := pairedRatio(a, b, base); got != 0.6 {
		t.Errorf("pairedRatio under drift = %v, want 0.6 (a ratio of medians gives 0.5)", got)
	}
	if got := pairedRatio(ms(150), ms(100), ms(100)); got != 0 {
		t.Errorf("a round with no overhead in b: %v, want 0 (no rounds)", got)
	}
}

// TestAgainstOriginal: the ratio is of overheads (each less the direct
// boot), and 0.7x itself meets the target.
func TestAgainstOriginal(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		ovl, original, base time.Duration
		ratio               float64
		verdict             string
	}{
		{170 * ms, 300 * ms, 100 * ms, 0.35, "met"},
		{240 * ms, 300 * ms, 100 * ms, 0.7, "met"},
		{250 * ms, 300 * ms, 100 * ms, 0.75, "MISSED"},
		{1100 * ms, 200 * ms, 100 * ms, 10, "MISSED"},
	} {
		r, v := againstOriginal(c.ovl, c.original, c.base)
		if math.Abs(r-c.ratio) > 1e-9 || v != c.verdict {
			t.Errorf("againstOriginal(%v, %v, %v) = %.3f, %s; want %.3f, %s", c.ovl, c.original, c.base, r, v, c.ratio, c.verdict)
		}
	}
}
