package tests

import (
	"bytes"
	"regexp"
)

// The serial console carries two writers at once: the guest's programs and
// the kernel's printk. On a loaded host a kernel record ("[   5.123456]
// msg") can land inside a line a program was writing, and a test that
// matches that line to its newline then misses it. mendConsole moves such a
// record after the line it split; the log file keeps the raw bytes.

// maxSplitRecords is how many kernel lines may follow a split line before
// mendConsole stops looking for its end.
const maxSplitRecords = 16

// kernelRecord is the start of a kernel log record with printk.time.
var kernelRecord = regexp.MustCompile(`\[ *\d+\.\d{6}\] `)

// mendConsole takes the console text not yet handed on (pending) and
// returns what can be handed on now, mended, and what must wait for more
// input. A complete line that a kernel record splits waits for the line
// that completes it; with flush (the console went quiet, or ended), nothing
// waits.
func mendConsole(pending []byte, flush bool) (out, rest []byte) {
	for len(pending) > 0 {
		nl := bytes.IndexByte(pending, '\n')
		if nl < 0 {
			break // an incomplete line waits for its end
		}
		line := pending[:nl+1]
		loc := kernelRecord.FindIndex(line)
		if loc == nil || loc[0] == 0 {
			out = append(out, line...)
			pending = pending[nl+1:]
			continue
		}
		// line is prefix + record(s): the prefix's own end is the first
		// following line that is not a kernel record itself.
		records := line[loc[0]:]
		next := pending[nl+1:]
		for k := 0; ; k++ {
			n := bytes.IndexByte(next, '\n')
			if n < 0 {
				break
			}
			if k == maxSplitRecords {
				// A flood of kernel lines (a panic's trace): the
				// program's line may never end; hand it on as it is.
				out = append(out, line...)
				pending = pending[nl+1:]
				records = nil
				break
			}
			l := next[:n+1]
			if at := kernelRecord.FindIndex(l); at == nil || at[0] != 0 {
				mended := append(append(append([]byte{}, line[:loc[0]]...), l...), records...)
				out = append(out, mended...)
				pending = next[n+1:]
				records = nil
				break
			}
			records = append(records[:len(records):len(records)], l...) // a copy: records points into pending
			next = next[n+1:]
		}
		if records != nil { // the prefix's end has not come yet
			if !flush {
				return out, pending
			}
			out = append(out, line...)
			pending = pending[nl+1:]
		}
	}
	if flush {
		out, pending = append(out, pending...), nil
	}
	return out, pending
}
