package tests

// Unit tests of the write-log reader (logwrites_test.go) on logs the tests
// build themselves: no VM, no root; they run under -short too.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// logBuilder writes a log in the format QEMU's blklogwrites writes.
type logBuilder struct {
	ss      int
	entries [][]byte
	count   int // nr_entries in the super block; -1: the number of entries
}

func (b *logBuilder) add(sector, sectors, flags uint64, inline string, data []byte) {
	h := make([]byte, b.ss)
	le := binary.LittleEndian
	le.PutUint64(h[0:], sector)
	le.PutUint64(h[8:], sectors)
	le.PutUint64(h[16:], flags)
	le.PutUint64(h[24:], uint64(len(inline)))
	copy(h[logHeaderSize:], inline)
	b.entries = append(b.entries, append(h, data...))
}

// write logs a write of data (whole sectors) at sector.
func (b *logBuilder) write(sector uint64, data []byte) {
	b.add(sector, uint64(len(data)/b.ss), 0, "", data)
}

func (b *logBuilder) flush()                         { b.add(0, 0, logFlagFlush, "", nil) }
func (b *logBuilder) mark(text string)               { b.add(0, 0, logFlagMark, text, nil) }
func (b *logBuilder) discard(sector, sectors uint64) { b.add(sector, sectors, logFlagDiscard, "", nil) }
func (b *logBuilder) fua(sector uint64, data []byte) {
	b.add(sector, uint64(len(data)/b.ss), logFlagFUA, "", data)
}

func sectorOf(ss int, c byte) []byte   { return bytes.Repeat([]byte{c}, ss) }
func newLogBuilder(ss int) *logBuilder { return &logBuilder{ss: ss, count: -1} }

// bytes is the log; bytesWith writes another magic or version.
func (b *logBuilder) bytes() []byte { return b.bytesWith(logMagic, logVersion) }

func (b *logBuilder) bytesWith(magic, version uint64) []byte {
	sb := make([]byte, b.ss)
	le := binary.LittleEndian
	n := b.count
	if n < 0 {
		n = len(b.entries)
	}
	le.PutUint64(sb[0:], magic)
	le.PutUint64(sb[8:], version)
	le.PutUint64(sb[16:], uint64(n))
	le.PutUint32(sb[24:], uint32(b.ss))
	return append(sb, bytes.Join(b.entries, nil)...)
}

// memDisk is an io.WriterAt over a byte slice of fixed size.
type memDisk []byte

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("write past the end of the disk")
	}
	return copy(m[off:], p), nil
}

// TestWriteLogReplay: the disk rebuilt at each flush point holds the base
// plus exactly the writes logged before that flush, in log order (a later
// write of the same sector wins), with discards read back as zeros.
func TestWriteLogReplay(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		b := newLogBuilder(ss)
		b.write(1, sectorOf(ss, 'a'))                               // 0
		b.write(2, append(sectorOf(ss, 'b'), sectorOf(ss, 'c')...)) // 1
		b.flush()                                                   // 2
		b.mark("after the first flush")                             // 3
		b.write(1, sectorOf(ss, 'd'))                               // 4
		b.discard(3, 1)                                             // 5
		b.fua(0, sectorOf(ss, 'e'))                                 // 6
		b.flush()                                                   // 7
		b.write(3, sectorOf(ss, 'z'))                               // 8: after the last flush, not counted
		b.count = 9
		raw := b.bytes()
		l, err := readWriteLog(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("ss %d: %v", ss, err)
		}
		if got, want := len(l.Entries), 9; got != want {
			t.Fatalf("ss %d: %d entries, want %d", ss, got, want)
		}
		if got := l.flushes(); len(got) != 2 || got[0] != 2 || got[1] != 7 {
			t.Errorf("ss %d: flush points %v, want [2 7]", ss, got)
		}
		if got := l.Entries[3].Mark; got != "after the first flush" {
			t.Errorf("ss %d: mark %q", ss, got)
		}
		if got := l.Entries[6].String(); got != "#6 sector 0 +1 FUA" {
			t.Errorf("ss %d: entry 6 is %q", ss, got)
		}
		base := func() memDisk { return memDisk(bytes.Repeat([]byte{'.'}, 5*ss)) }
		sect := func(d memDisk) string {
			var s strings.Builder
			for i := 0; i < 5; i++ {
				s.WriteByte(d[i*ss])
				if !bytes.Equal(d[i*ss:(i+1)*ss], bytes.Repeat(d[i*ss:i*ss+1], ss)) {
					t.Errorf("ss %d: sector %d is not uniform", ss, i)
				}
			}
			return s.String()
		}
		d := base()
		if err := l.replay(d, 0, 2); err != nil {
			t.Fatal(err)
		}
		if got := sect(d); got != ".abc." {
			t.Errorf("ss %d: at the first flush point: %q, want %q", ss, got, ".abc.")
		}
		if err := l.replay(d, 2, 7); err != nil {
			t.Fatal(err)
		}
		if got := sect(d); got != "edb\x00." {
			t.Errorf("ss %d: at the second flush point: %q, want %q", ss, got, "edb\x00.")
		}
		if err := l.replay(d, 7, 9); err != nil {
			t.Fatal(err)
		}
		if got := sect(d); got != "edbz." {
			t.Errorf("ss %d: after every entry: %q, want %q", ss, got, "edbz.")
		}
		if i, err := l.find(3, "zz"); err != nil || i != 8 {
			t.Errorf("ss %d: find(3, zz) = %d, %v, want 8", ss, i, err)
		}
		if i, _ := l.find(3, "zy"); i != -1 {
			t.Errorf("ss %d: find(3, zy) = %d, want -1", ss, i)
		}
	}
}

// TestWriteLogBad: a log that does not parse says why, never panics, and
// never reads past its end.
func TestWriteLogBad(t *testing.T) {
	good := func() *logBuilder {
		b := newLogBuilder(512)
		b.write(4, sectorOf(512, 'x'))
		b.flush()
		return b
	}
	cases := []struct {
		name string
		log  func() []byte
		want string
	}{
		{"magic", func() []byte { return good().bytesWith(0x1234, logVersion) }, "magic"},
		{"version", func() []byte { return good().bytesWith(logMagic, 2) }, "version"},
		{"empty", func() []byte { return nil }, "super block"},
		{"sector size", func() []byte {
			raw := good().bytes()
			binary.LittleEndian.PutUint32(raw[24:], 1000)
			return raw
		}, "sector size"},
		{"too many entries", func() []byte { b := good(); b.count = 1 << 30; return b.bytes() }, "cannot fit"},
		{"truncated data", func() []byte { raw := good().bytes(); return raw[:512+512+100] }, "past the end"},
		{"missing entry", func() []byte { b := good(); b.count = 3; raw := b.bytes(); return append(raw, make([]byte, 100)...) }, "past the end"},
		{"flags", func() []byte { b := good(); b.add(0, 0, 1<<7, "", nil); return b.bytes() }, "unknown flags"},
		{"inline data", func() []byte {
			b := good()
			b.add(0, 0, logFlagMark, "", nil)
			raw := b.bytes()
			binary.LittleEndian.PutUint64(raw[len(raw)-512+24:], 600)
			return raw
		}, "inline data"},
	}
	for _, c := range cases {
		raw := c.log()
		_, err := readWriteLog(bytes.NewReader(raw), int64(len(raw)))
		if err == nil || !errors.Is(err, errBadLog) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want errBadLog saying %q", c.name, err, c.want)
		}
	}
}

// FuzzReadWriteLog: any bytes parse or fail, and a parsed log replays onto
// a disk large enough for its writes without reading past the log.
func FuzzReadWriteLog(f *testing.F) {
	b := newLogBuilder(512)
	b.write(1, sectorOf(512, 'a'))
	b.flush()
	b.mark("m")
	b.discard(0, 2)
	f.Add(b.bytes())
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := readWriteLog(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			return
		}
		for _, e := range l.Entries {
			if _, err := l.data(e); err != nil {
				t.Fatalf("entry %s parsed but its data do not read: %v", e, err)
			}
		}
	})
}
