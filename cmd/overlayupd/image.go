package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/squash"
)

// checkImage refuses, before anything is locked or written, an image path
// that cannot be a bootable root: missing, a directory, or failing
// squash.Validate. The error says what is wrong and what to do.
func checkImage(path string) (squash.Info, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return squash.Info{}, fmt.Errorf("%s does not exist: check the path (or give '-' to read the image from stdin)", path)
	case err != nil:
		return squash.Info{}, fmt.Errorf("cannot read %s: %w", path, err)
	case st.IsDir():
		return squash.Info{}, fmt.Errorf("%s is a directory, not an image: make a squashfs image of it with 'mksquashfs %s root.sqsh' and give that", path, path)
	case !st.Mode().IsRegular():
		// Why refuse before opening: a FIFO without a writer blocks open(2)
		// forever, and a device is no image file.
		return squash.Info{}, fmt.Errorf("%s is a %s, not an image file: to apply from a pipe, give '-' and feed the image on stdin", path, fileKind(st.Mode()))
	}
	info, err := squash.Validate(path)
	if err != nil {
		return info, imageError(err)
	}
	return info, nil
}

// imageError adds to a squash error what the user can do about it.
func imageError(err error) error {
	for _, h := range []struct {
		is   error
		hint string
	}{
		{squash.ErrNotSquashfs, "build the image with mksquashfs"},
		{squash.ErrBadSuperblock, "the image is damaged or not squashfs: build it again with mksquashfs"},
		{squash.ErrTruncated, "the image is incomplete (an interrupted download or copy?): fetch it again"},
		{squash.ErrShortRead, "the input ended before the image did (an interrupted download or pipe?): fetch it again"},
		{squash.ErrInputTooLong, "the file changed while it was read: try again when it is complete"},
		{squash.ErrCorrupt, "the image is damaged: fetch or build it again"},
		{squash.ErrNoInit, "a root image must contain /sbin/init, or it cannot boot: is this a root filesystem?"},
		{squash.ErrInitNotExecutable, "make /sbin/init executable (chmod 755) before building the image"},
		{squash.ErrDanglingSymlink, "/sbin/init must lead to a file inside the image"},
		{squash.ErrSymlinkLoop, "/sbin/init must lead to a file inside the image"},
		{squash.ErrNotFile, "give an image file"},
		{squash.ErrNoSpace, "free space on the store: 'overlayupd gc' removes failed roots and leftovers"},
	} {
		if errors.Is(err, h.is) {
			return fmt.Errorf("%w\n%s; nothing was changed", err, h.hint)
		}
	}
	return fmt.Errorf("%w\nnothing was changed", err)
}

// staged is an image copied into a slot directory under a .stage-* name.
type staged struct {
	tmp  string
	sum  [32]byte
	size int64
	info squash.Info
}

func (s staged) sha256() string { return hex.EncodeToString(s.sum[:]) }

// stageImage copies r (size bytes, -1 if unknown) into dir with squash.Stage,
// checks the signature (check, if any) against the bytes it copied, and
// validates the copy: only the copy is what will boot, and a pipe that
// ended early is only seen there. The signature comes first: with keys
// trusted, only signed bytes reach the squashfs reader. On any error no
// file is left behind.
func stageImage(ctx context.Context, r io.Reader, size int64, dir string, progress func(int64), check *sigCheck) (s staged, err error) {
	s.tmp, s.sum, s.size, err = squash.StageWith(ctx, r, size, dir, squash.Options{Progress: progress, Hash: check.hash()})
	if err != nil {
		return staged{}, imageError(err)
	}
	if err := check.verify(); err != nil {
		discard(s.tmp)
		return staged{}, err
	}
	if s.info, err = squash.Validate(s.tmp); err != nil {
		discard(s.tmp)
		what := "the copied image"
		if size < 0 {
			what = fmt.Sprintf("the image read from stdin (%d bytes)", s.size)
		}
		return staged{}, imageError(retext{strings.ReplaceAll(err.Error(), s.tmp, what), err})
	}
	return s, nil
}

// retext is err with another text: the temp file's name means nothing to
// the user once it is removed.
type retext struct {
	msg string
	err error
}

func (r retext) Error() string { return r.msg }
func (r retext) Unwrap() error { return r.err }

// discard removes a .stage-* file and makes the removal durable, best effort:
// gc removes what is left.
func discard(tmp string) {
	_ = os.Remove(tmp)
	_ = atomicfile.SyncDir(filepath.Dir(tmp))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

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
// stderr): one every `every` (1 s if 0), and a last one with "done" when it
// wrote any. A copy shorter than `every` writes none.
type jsonProgress struct {
	w       io.Writer
	total   int64
	every   time.Duration
	start   time.Time
	last    time.Time
	n       int64
	written bool
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
	p.written = true
}

func (p *jsonProgress) finish() {
	if p.written {
		p.write(time.Now(), true)
	}
}
