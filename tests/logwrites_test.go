package tests

// A reader and replayer of the write log that QEMU's blklogwrites block
// driver records (issue 9, item 8: flush-point replay). The format is the
// kernel's dm-log-writes format:
//
//	sector 0      the super block: magic, version, nr_entries (u64 each),
//	              sectorsize (u32), little-endian, the rest of the sector zero
//	then, for each entry, from sector 1 on:
//	              a header sector: sector, nr_sectors, flags, data_len (u64
//	              each), then data_len bytes of inline data (a MARK's text)
//	              nr_sectors sectors of the written data, except for DISCARD
//
// QEMU counts sector and nr_sectors in the log's own sector size (the kernel
// in 512-byte sectors); the tests record with 512-byte log sectors, where
// both agree. QEMU logs a write after the disk file has it, and a FLUSH after
// the disk file's flush; it rewrites the super block (nr_entries) at each
// flush, so entries after the last flush are not counted, and log-append
// continues after the counted ones. A write of zeros is logged as a write
// whose data are zeros.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// The log's flags and constants (drivers/md/dm-log-writes.c).
const (
	logFlagFlush   = 1 << 0
	logFlagFUA     = 1 << 1
	logFlagDiscard = 1 << 2
	logFlagMark    = 1 << 3
	logFlagMask    = logFlagFlush | logFlagFUA | logFlagDiscard | logFlagMark

	logMagic      = 0x6a736677736872
	logVersion    = 1
	logHeaderSize = 32 // an entry's header, and (with the sector size) the super block's fields
)

// logEntry is one entry of a write log.
type logEntry struct {
	Index   int
	Sector  uint64 // first sector written, in the log's sector size
	Sectors uint64 // sectors written (or discarded)
	Flags   uint64
	Mark    string // a MARK's text
	dataOff int64  // where the written data start in the log
}

func (e logEntry) flush() bool   { return e.Flags&logFlagFlush != 0 }
func (e logEntry) discard() bool { return e.Flags&logFlagDiscard != 0 }

func (e logEntry) String() string {
	var f string
	for _, n := range []struct {
		bit  uint64
		name string
	}{{logFlagFlush, "FLUSH"}, {logFlagFUA, "FUA"}, {logFlagDiscard, "DISCARD"}, {logFlagMark, "MARK"}} {
		if e.Flags&n.bit != 0 {
			f += "|" + n.name
		}
	}
	if f != "" {
		f = " " + f[1:]
	}
	return fmt.Sprintf("#%d sector %d +%d%s", e.Index, e.Sector, e.Sectors, f)
}

// writeLog is a parsed log; its data are read from r on demand.
type writeLog struct {
	r          io.ReaderAt
	SectorSize int64
	Entries    []logEntry
}

// errBadLog wraps every reason a log does not parse.
var errBadLog = errors.New("bad write log")

// readWriteLog parses the log in r (size bytes): the super block and the
// nr_entries entries it counts, each checked to lie inside the log.
func readWriteLog(r io.ReaderAt, size int64) (*writeLog, error) {
	var sb [logHeaderSize + 4]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: super block: %w", errBadLog, err)
	}
	le := binary.LittleEndian
	if m := le.Uint64(sb[0:]); m != logMagic {
		return nil, fmt.Errorf("%w: magic %#x, want %#x", errBadLog, m, uint64(logMagic))
	}
	if v := le.Uint64(sb[8:]); v != logVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errBadLog, v, logVersion)
	}
	n := le.Uint64(sb[16:])
	ss := int64(le.Uint32(sb[24:]))
	if ss < 512 || ss > 1<<20 || bits.OnesCount64(uint64(ss)) != 1 {
		return nil, fmt.Errorf("%w: sector size %d", errBadLog, ss)
	}
	if n > uint64(size/ss) {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", errBadLog, n, size)
	}
	l := &writeLog{r: r, SectorSize: ss, Entries: make([]logEntry, 0, n)}
	off := ss // the first entry's header
	hdr := make([]byte, ss)
	for i := 0; i < int(n); i++ {
		if off+ss > size {
			return nil, fmt.Errorf("%w: entry %d of %d: its header at %d is past the end (%d bytes)", errBadLog, i, n, off, size)
		}
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf("%w: entry %d header: %w", errBadLog, i, err)
		}
		e := logEntry{Index: i, Sector: le.Uint64(hdr[0:]), Sectors: le.Uint64(hdr[8:]), Flags: le.Uint64(hdr[16:])}
		dataLen := le.Uint64(hdr[24:])
		if e.Flags&^logFlagMask != 0 {
			return nil, fmt.Errorf("%w: entry %d: unknown flags %#x", errBadLog, i, e.Flags)
		}
		if dataLen > uint64(ss-logHeaderSize) {
			return nil, fmt.Errorf("%w: entry %d: inline data of %d bytes in a %d-byte sector", errBadLog, i, dataLen, ss)
		}
		e.Mark = string(hdr[logHeaderSize : logHeaderSize+int64(dataLen)])
		e.dataOff = off + ss
		off = e.dataOff
		if !e.discard() {
			if e.Sectors > uint64((size-off)/ss) {
				return nil, fmt.Errorf("%w: entry %d (%s): its data run past the end of the log", errBadLog, i, e)
			}
			off += int64(e.Sectors) * ss
		}
		l.Entries = append(l.Entries, e)
	}
	return l, nil
}

// flushes returns the indices of the FLUSH entries: the flush points.
func (l *writeLog) flushes() []int {
	var out []int
	for _, e := range l.Entries {
		if e.flush() {
			out = append(out, e.Index)
		}
	}
	return out
}

// data returns what entry e wrote (nil for a flush, a mark or a discard).
func (l *writeLog) data(e logEntry) ([]byte, error) {
	if e.discard() || e.Sectors == 0 {
		return nil, nil
	}
	b := make([]byte, int64(e.Sectors)*l.SectorSize)
	if _, err := l.r.ReadAt(b, e.dataOff); err != nil {
		return nil, fmt.Errorf("entry %s: read its data: %w", e, err)
	}
	return b, nil
}

// replay applies the entries from..to-1 to the disk image w: a write
// writes its data, a discard writes zeros (what a raw image file reads
// after a discard punches its hole), flushes and marks write nothing.
func (l *writeLog) replay(w io.WriterAt, from, to int) error {
	for _, e := range l.Entries[from:to] {
		b, err := l.data(e)
		if err != nil {
			return err
		}
		if e.discard() && e.Sectors > 0 {
			b = make([]byte, int64(e.Sectors)*l.SectorSize)
		}
		if len(b) == 0 {
			continue
		}
		if _, err := w.WriteAt(b, int64(e.Sector)*l.SectorSize); err != nil {
			return fmt.Errorf("replay entry %s: %w", e, err)
		}
	}
	return nil
}

// find returns the first write entry at sector whose data start with
// prefix, or -1.
func (l *writeLog) find(sector uint64, prefix string) (int, error) {
	for _, e := range l.Entries {
		if e.Sector != sector || e.Sectors == 0 || e.discard() {
			continue
		}
		b, err := l.data(e)
		if err != nil {
			return -1, err
		}
		if len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix {
			return e.Index, nil
		}
	}
	return -1, nil
}
