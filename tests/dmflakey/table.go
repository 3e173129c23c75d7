package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/overlayupd/overlayupd/internal/dm"
)

// span is a range of 512-byte sectors.
type span struct{ start, n uint64 }

// parseRanges reads "S+N,S+N" (start sector and count, decimal).
func parseRanges(spec string) ([]span, error) {
	var out []span
	for _, r := range strings.Split(spec, ",") {
		if r == "" {
			continue
		}
		a, b, ok := strings.Cut(r, "+")
		s, err1 := strconv.ParseUint(a, 10, 64)
		n, err2 := strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || n == 0 {
			return nil, fmt.Errorf("bad sector range %q: want START+COUNT", r)
		}
		out = append(out, span{s, n})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bad sectors given (harness.badblocks=START+COUNT,...)")
	}
	return out, nil
}

// table maps a disk of size sectors: linear pieces, and a dm-flakey target
// that is always down over each bad range (sorted, merged where they touch).
func table(disk string, size uint64, bad []span) ([]dm.Target, error) {
	sort.Slice(bad, func(i, j int) bool { return bad[i].start < bad[j].start })
	var out []dm.Target
	at := uint64(0)
	add := func(start, n uint64, typ string) {
		if n == 0 {
			return
		}
		if k := len(out) - 1; k >= 0 && typ == "flakey" && out[k].Type == "flakey" && out[k].Start+out[k].Length == start {
			out[k].Length += n
			out[k].Params = fmt.Sprintf("%s %d 0 1", disk, out[k].Start)
			return
		}
		p := fmt.Sprintf("%s %d", disk, start)
		if typ == "flakey" {
			p += " 0 1" // up 0 s, down 1 s: down at every instant
		}
		out = append(out, dm.Target{Start: start, Length: n, Type: typ, Params: p})
	}
	for _, b := range bad {
		if b.start+b.n > size || b.start+b.n < b.start {
			return nil, fmt.Errorf("bad range %d+%d is past the disk's end (%d sectors)", b.start, b.n, size)
		}
		if b.start < at {
			if b.start+b.n <= at {
				continue
			}
			b = span{at, b.start + b.n - at} // overlaps the previous range
		}
		add(at, b.start-at, "linear")
		add(b.start, b.n, "flakey")
		at = b.start + b.n
	}
	add(at, size-at, "linear")
	return out, nil
}
