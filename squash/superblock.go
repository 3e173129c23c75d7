package squash

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// SuperblockSize is the size of a squashfs 4.0 superblock at offset 0.
const SuperblockSize = 96

const (
	magicLE      = 0x73717368 // "hsqs" read as little-endian
	magicBE      = 0x68737173 // "sqsh": a big-endian (pre-4.0 or foreign) image
	noTable      = ^uint64(0) // an optional table that is absent
	metaBlockMax = 8192       // uncompressed size of a metadata block
)

// Compression ids of squashfs 4.0.
const (
	compGzip uint16 = 1 + iota
	compLzma
	compLzo
	compXz
	compLz4
	compZstd
)

var compNames = map[uint16]string{
	compGzip: "gzip", compLzma: "lzma", compLzo: "lzo",
	compXz: "xz", compLz4: "lz4", compZstd: "zstd",
}

// KernelMountable reports whether Linux can mount an image of this
// compression: lzma (id 2) squashfs was never merged into the kernel.
func (s Superblock) KernelMountable() bool { return s.Compression != compLzma }

// GoReadable reports whether the in-process reader (package squash/inspect,
// go-diskfs) can read this compression; lz4 and lzo images are checked by a
// kernel mount instead (ValidateByMount).
func (s Superblock) GoReadable() bool {
	return s.Compression != compLz4 && s.Compression != compLzo
}

// Superblock is the parsed squashfs 4.0 superblock.
type Superblock struct {
	Inodes       uint32
	ModTime      uint32
	BlockSize    uint32
	Fragments    uint32
	Compression  uint16
	BlockLog     uint16
	Flags        uint16
	IDCount      uint16
	Major, Minor uint16
	RootInode    uint64
	BytesUsed    uint64
	IDTable      uint64
	XattrTable   uint64
	InodeTable   uint64
	DirTable     uint64
	FragTable    uint64
	ExportTable  uint64
}

// CompressionName is the name mksquashfs uses for the compression id.
func (s Superblock) CompressionName() string {
	if n, ok := compNames[s.Compression]; ok {
		return n
	}
	return fmt.Sprintf("unknown(%d)", s.Compression)
}

// Time is the image's modification time.
func (s Superblock) Time() time.Time { return time.Unix(int64(s.ModTime), 0).UTC() }

// ParseSuperblock decodes and sanity-checks the first SuperblockSize bytes of an
// image. It never panics; errors wrap ErrNotSquashfs or ErrBadSuperblock.
func ParseSuperblock(b []byte) (Superblock, error) {
	if len(b) < SuperblockSize {
		return Superblock{}, fmt.Errorf("%w: %d bytes is too small for a superblock (%d)", ErrNotSquashfs, len(b), SuperblockSize)
	}
	if err := checkMagic(b); err != nil {
		return Superblock{}, err
	}
	le := binary.LittleEndian
	s := Superblock{
		Inodes: le.Uint32(b[4:]), ModTime: le.Uint32(b[8:]), BlockSize: le.Uint32(b[12:]),
		Fragments: le.Uint32(b[16:]), Compression: le.Uint16(b[20:]), BlockLog: le.Uint16(b[22:]),
		Flags: le.Uint16(b[24:]), IDCount: le.Uint16(b[26:]), Major: le.Uint16(b[28:]), Minor: le.Uint16(b[30:]),
		RootInode: le.Uint64(b[32:]), BytesUsed: le.Uint64(b[40:]), IDTable: le.Uint64(b[48:]),
		XattrTable: le.Uint64(b[56:]), InodeTable: le.Uint64(b[64:]), DirTable: le.Uint64(b[72:]),
		FragTable: le.Uint64(b[80:]), ExportTable: le.Uint64(b[88:]),
	}
	if err := s.check(); err != nil {
		return Superblock{}, fmt.Errorf("%w: %w", ErrBadSuperblock, err)
	}
	return s, nil
}

// checkMagic names what the bytes look like when they are not squashfs, so the
// user learns e.g. that they passed an ext4 image.
func checkMagic(b []byte) error {
	m := binary.LittleEndian.Uint32(b)
	switch {
	case m == magicLE:
		return nil
	case m == magicBE:
		return fmt.Errorf("%w: big-endian squashfs (magic \"sqsh\") is not supported", ErrNotSquashfs)
	case len(b) >= 1082 && binary.LittleEndian.Uint16(b[1080:]) == 0xEF53:
		return fmt.Errorf("%w: it looks like an ext2/3/4 filesystem", ErrNotSquashfs)
	case len(b) >= 0x10048 && bytes.Equal(b[0x10040:0x10048], []byte("_BHRfS_M")):
		return fmt.Errorf("%w: it looks like a btrfs filesystem", ErrNotSquashfs)
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return fmt.Errorf("%w: it looks gzip-compressed; decompress it first", ErrNotSquashfs)
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return fmt.Errorf("%w: it looks xz-compressed; decompress it first", ErrNotSquashfs)
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return fmt.Errorf("%w: it looks zstd-compressed; decompress it first", ErrNotSquashfs)
	}
	return fmt.Errorf("%w: bad magic %#08x, want %#08x (\"hsqs\")", ErrNotSquashfs, m, magicLE)
}

// check is the consistency of the fields among themselves; the file size is
// checked by the caller (bytes_used against it gives ErrTruncated).
func (s Superblock) check() error {
	switch {
	case s.Major != 4 || s.Minor != 0:
		return fmt.Errorf("version %d.%d, only 4.0 is supported", s.Major, s.Minor)
	case s.BlockSize < 4096 || s.BlockSize > 1<<20 || s.BlockSize&(s.BlockSize-1) != 0:
		return fmt.Errorf("block size %d is not a power of two between 4 KiB and 1 MiB", s.BlockSize)
	case uint32(1)<<(s.BlockLog&31) != s.BlockSize || s.BlockLog > 20:
		return fmt.Errorf("block_log %d does not match block size %d", s.BlockLog, s.BlockSize)
	case compNames[s.Compression] == "":
		return fmt.Errorf("%w: compression id %d is unknown", ErrUnsupportedCompression, s.Compression)
	case s.Inodes == 0:
		return fmt.Errorf("inode count is 0")
	case s.IDCount == 0:
		return fmt.Errorf("uid/gid table is empty")
	case s.BytesUsed < SuperblockSize:
		return fmt.Errorf("bytes_used %d is smaller than the superblock", s.BytesUsed)
	case s.InodeTable < SuperblockSize || s.InodeTable >= s.DirTable || s.DirTable >= s.BytesUsed:
		return fmt.Errorf("inode table at %d and directory table at %d are out of order or beyond bytes_used %d",
			s.InodeTable, s.DirTable, s.BytesUsed)
	case s.IDTable >= s.BytesUsed:
		return fmt.Errorf("id table at %d is beyond bytes_used %d", s.IDTable, s.BytesUsed)
	case s.RootInode>>16 >= s.DirTable-s.InodeTable || s.RootInode&0xffff >= metaBlockMax:
		return fmt.Errorf("root inode reference %#x is outside the inode table", s.RootInode)
	}
	for name, at := range map[string]uint64{"xattr": s.XattrTable, "fragment": s.FragTable, "export": s.ExportTable} {
		if at != noTable && at >= s.BytesUsed {
			return fmt.Errorf("%s table at %d is beyond bytes_used %d", name, at, s.BytesUsed)
		}
	}
	return nil
}

// Marshal encodes s as a superblock; tests use it to build corrupt images.
func (s Superblock) Marshal() []byte {
	b := make([]byte, SuperblockSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magicLE)
	le.PutUint32(b[4:], s.Inodes)
	le.PutUint32(b[8:], s.ModTime)
	le.PutUint32(b[12:], s.BlockSize)
	le.PutUint32(b[16:], s.Fragments)
	le.PutUint16(b[20:], s.Compression)
	le.PutUint16(b[22:], s.BlockLog)
	le.PutUint16(b[24:], s.Flags)
	le.PutUint16(b[26:], s.IDCount)
	le.PutUint16(b[28:], s.Major)
	le.PutUint16(b[30:], s.Minor)
	for i, v := range []uint64{s.RootInode, s.BytesUsed, s.IDTable, s.XattrTable, s.InodeTable, s.DirTable, s.FragTable, s.ExportTable} {
		le.PutUint64(b[32+8*i:], v)
	}
	return b
}
