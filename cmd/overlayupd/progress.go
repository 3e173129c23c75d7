package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/overlay"
)

// progress returns the copy's progress callback for cmd and what ends it:
// a bar on a terminal, JSON lines on stderr with --json, else nothing.
func (e *env) progress(cmd *cobra.Command, total int64, asJSON bool) (func(int64), func()) {
	update, finish := e.progressOut(cmd.ErrOrStderr(), total, asJSON)
	if e.copied == nil {
		return update, finish
	}
	return func(n int64) {
		if update != nil {
			update(n)
		}
		e.copied(n)
	}, finish
}

func (e *env) progressOut(w io.Writer, total int64, asJSON bool) (func(int64), func()) {
	switch {
	case asJSON:
		now := time.Now()
		p := &jsonProgress{w: w, total: total, every: e.progressEvery, start: now, last: now}
		return p.update, p.finish
	case isTerminal(w):
		bar := &progressBar{w: w, total: total}
		return bar.update, bar.finish
	}
	return nil, func() {}
}

// rate is a copy's average speed since start, in bytes per second, and the
// time left at that speed (-1 when unknown: no total, or no speed yet).
func rate(n, total int64, elapsed time.Duration) (perSec float64, eta time.Duration) {
	if elapsed <= 0 || n <= 0 {
		return 0, -1
	}
	perSec = float64(n) / elapsed.Seconds()
	if total < n {
		return perSec, -1
	}
	return perSec, time.Duration(float64(total-n) / perSec * float64(time.Second))
}

// progressBar draws the copy's progress on one terminal line, at most every
// 100 ms: bytes, speed and, when the total is known, percentage and time
// left. total < 0 (stdin) shows the bytes copied and the speed only.
type progressBar struct {
	w     io.Writer
	total int64
	start time.Time
	last  time.Time
}

func (p *progressBar) update(n int64) {
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	if now.Sub(p.last) < 100*time.Millisecond && n != p.total {
		return
	}
	p.last = now
	perSec, eta := rate(n, p.total, now.Sub(p.start))
	speed := ""
	if perSec > 0 {
		speed = ", " + overlay.HumanBytes(uint64(perSec)) + "/s"
	}
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\rcopying: %s%s\033[K", overlay.HumanBytes(uint64(n)), speed)
		return
	}
	const width = 30
	done := int(n * width / p.total)
	left := ""
	if eta >= 0 {
		left = ", " + clock(eta) + " left"
	}
	fmt.Fprintf(p.w, "\rcopying [%s%s] %3d%% %s of %s%s%s\033[K", strings.Repeat("#", done), strings.Repeat(".", width-done),
		n*100/p.total, overlay.HumanBytes(uint64(n)), overlay.HumanBytes(uint64(p.total)), speed, left)
}

func (p *progressBar) finish() { fmt.Fprint(p.w, "\r\033[K") }

// clock formats a duration as m:ss (or h:mm:ss).
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// jsonProgress writes the copy's progress as JSON lines (apply --json, on
// stderr): one every `every` (1 s if 0), and always a last one with "done"
// when the copy is over, so that a reader waiting for it never waits in
// vain (a copy shorter than `every` wrote none at all before). The result,
// or the error, follows on stdout.
type jsonProgress struct {
	w     io.Writer
	total int64
	every time.Duration
	start time.Time
	last  time.Time
	n     int64
}

// progressLine is one line of apply --json's progress.
type progressLine struct {
	Progress struct {
		Bytes          int64   `json:"bytes"`
		Total          int64   `json:"total"` // -1: unknown (stdin)
		BytesPerSecond float64 `json:"bytes_per_second"`
		ETASeconds     float64 `json:"eta_seconds"` // -1: unknown
		Done           bool    `json:"done,omitempty"`
	} `json:"progress"`
}

func (p *jsonProgress) update(n int64) {
	now := time.Now()
	p.n = n
	every := p.every
	if every <= 0 {
		every = time.Second
	}
	if now.Sub(p.last) >= every {
		p.last = now
		p.write(now, false)
	}
}

func (p *jsonProgress) write(now time.Time, done bool) {
	var l progressLine
	perSec, eta := rate(p.n, p.total, now.Sub(p.start))
	l.Progress.Bytes, l.Progress.Total, l.Progress.BytesPerSecond, l.Progress.Done = p.n, p.total, perSec, done
	l.Progress.ETASeconds = -1
	if eta >= 0 {
		l.Progress.ETASeconds = eta.Seconds()
	}
	b, _ := json.Marshal(l)
	fmt.Fprintf(p.w, "%s\n", b)
}

func (p *jsonProgress) finish() { p.write(time.Now(), true) }
