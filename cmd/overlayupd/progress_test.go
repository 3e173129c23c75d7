package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n, total int64
		elapsed  time.Duration
		perSec   float64
		eta      time.Duration
	}{
		{50, 100, time.Second, 50, time.Second},
		{100, 100, 2 * time.Second, 50, 0},
		{10, -1, time.Second, 10, -1}, // stdin: no total, no time left
		{0, 100, time.Second, 0, -1},  // nothing yet: no speed
		{10, 100, 0, 0, -1},
	} {
		perSec, eta := rate(c.n, c.total, c.elapsed)
		if perSec != c.perSec || eta != c.eta {
			t.Errorf("rate(%d, %d, %v) = %v, %v; want %v, %v", c.n, c.total, c.elapsed, perSec, eta, c.perSec, c.eta)
		}
	}
}

func TestProgressBarLine(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := &progressBar{w: &b, total: 200 << 20, start: time.Now().Add(-2 * time.Second)}
	p.update(100 << 20)
	line := b.String()
	for _, w := range []string{"50%", "100.0 MiB of 200.0 MiB", "MiB/s", "0:02 left"} {
		if !strings.Contains(line, w) {
			t.Errorf("bar %q lacks %q", line, w)
		}
	}
	b.Reset()
	s := &progressBar{w: &b, total: -1, start: time.Now().Add(-time.Second)}
	s.update(5 << 20)
	if line := b.String(); !strings.Contains(line, "5.0 MiB") || !strings.Contains(line, "/s") || strings.Contains(line, "left") {
		t.Errorf("stdin bar %q: want bytes and speed, no time left", line)
	}
}

// TestJSONProgressAlwaysDone: a copy over before the first progress line
// is due still ends with one line saying done, with its bytes: a reader
// waiting for "done" waited for ever on a short copy.
func TestJSONProgressAlwaysDone(t *testing.T) {
	var buf bytes.Buffer
	now := time.Now()
	p := &jsonProgress{w: &buf, total: 100, every: time.Hour, start: now, last: now}
	p.update(100)
	p.finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var l progressLine
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &l) != nil || !l.Progress.Done || l.Progress.Bytes != 100 {
		t.Fatalf("progress of a short copy: %q, want one line with done and 100 bytes", buf.String())
	}
}
