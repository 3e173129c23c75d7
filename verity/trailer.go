package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// TrailerSize is the size of the trailer block at the end of an image file.
const TrailerSize = BlockSize

// trailerVersion is the version of the trailer's layout.
const trailerVersion = 1

// maxSalt bounds the salt the trailer holds (veritysetup allows 256 bytes;
// we make 32).
const maxSalt = 64

// The trailer's layout, little-endian, at the start of the file's last block
// (the rest of the block is zero):
//
//	0    magic "OVUPDVTY"
//	8    u32 trailer version (1)
//	12   u32 dm-verity hash type (1)
//	16   u32 data block size (4096)
//	20   u32 hash block size (4096)
//	24   [16] algorithm, NUL-padded ("sha256")
//	40   u64 image size in bytes
//	48   u64 data blocks
//	56   u64 hash offset in bytes (data blocks × 4096)
//	64   u64 hash blocks
//	72   [32] root hash
//	104  u16 salt length
//	106  [64] salt, zero-padded
//	170  reserved, zero
//	224  [32] sha256 of bytes 0..223
const (
	offVersion  = 8
	offType     = 12
	offDataBS   = 16
	offHashBS   = 20
	offAlg      = 24
	offImage    = 40
	offBlocks   = 48
	offHashOff  = 56
	offHashBlks = 64
	offRoot     = 72
	offSaltLen  = 104
	offSalt     = 106
	offSum      = 224
	trailerUsed = offSum + sha256.Size
)

var trailerMagic = []byte("OVUPDVTY")

// Errors of ParseTrailer and ReadTrailer.
var (
	// ErrNoTrailer: the file has no verity trailer (an image staged before
	// verity, or a plain squashfs file).
	ErrNoTrailer = errors.New("no dm-verity hash tree in the image")
	// ErrBadTrailer: the trailer is there but damaged or inconsistent with
	// the file: the image is damaged.
	ErrBadTrailer = errors.New("damaged dm-verity trailer")
)

// Trailer describes the hash tree appended to an image file.
type Trailer struct {
	ImageSize  int64  // the image's own bytes, before padding and tree
	DataBlocks uint64 // verity data blocks: the image, zero-padded
	HashOffset int64  // where the tree starts, DataBlocks × BlockSize
	HashBlocks uint64 // blocks of the tree
	Root       [DigestSize]byte
	Salt       []byte
}

// NewTrailer describes tree, computed over an image of imageSize bytes.
func NewTrailer(tree Tree, imageSize int64) (Trailer, error) {
	switch {
	case imageSize <= 0:
		return Trailer{}, ErrEmpty
	case DataBlocks(imageSize) != tree.DataBlocks:
		return Trailer{}, fmt.Errorf("tree of %d blocks for an image of %d bytes", tree.DataBlocks, imageSize)
	case len(tree.Salt) > maxSalt:
		return Trailer{}, fmt.Errorf("salt of %d bytes, at most %d", len(tree.Salt), maxSalt)
	case tree.Spilled < 0 || uint64(int64(len(tree.Hash))+tree.Spilled) != HashBlocks(tree.DataBlocks)*BlockSize:
		return Trailer{}, fmt.Errorf("hash area of %d bytes, want %d blocks", int64(len(tree.Hash))+tree.Spilled, HashBlocks(tree.DataBlocks))
	}
	return Trailer{ImageSize: imageSize, DataBlocks: tree.DataBlocks, HashOffset: int64(tree.DataBlocks) * BlockSize,
		HashBlocks: HashBlocks(tree.DataBlocks), Root: tree.Root, Salt: append([]byte(nil), tree.Salt...)}, nil
}

// FileSize is the size of the image file that carries this trailer.
func (t Trailer) FileSize() int64 {
	return t.HashOffset + int64(t.HashBlocks)*BlockSize + TrailerSize
}

// RootHex is the root hash in hex, as veritysetup prints it.
func (t Trailer) RootHex() string { return hex.EncodeToString(t.Root[:]) }

// Marshal encodes the trailer block.
func (t Trailer) Marshal() []byte {
	b := make([]byte, TrailerSize)
	le := binary.LittleEndian
	copy(b, trailerMagic)
	le.PutUint32(b[offVersion:], trailerVersion)
	le.PutUint32(b[offType:], HashType)
	le.PutUint32(b[offDataBS:], BlockSize)
	le.PutUint32(b[offHashBS:], BlockSize)
	copy(b[offAlg:offImage], Algorithm)
	le.PutUint64(b[offImage:], uint64(t.ImageSize))
	le.PutUint64(b[offBlocks:], t.DataBlocks)
	le.PutUint64(b[offHashOff:], uint64(t.HashOffset))
	le.PutUint64(b[offHashBlks:], t.HashBlocks)
	copy(b[offRoot:], t.Root[:])
	le.PutUint16(b[offSaltLen:], uint16(len(t.Salt)))
	copy(b[offSalt:offSalt+maxSalt], t.Salt)
	sum := sha256.Sum256(b[:offSum])
	copy(b[offSum:], sum[:])
	return b
}

// ParseTrailer decodes the last block of a file of fileSize bytes and checks
// it against that size. It never panics. A block without the magic is
// ErrNoTrailer; anything else wrong is ErrBadTrailer.
func ParseTrailer(b []byte, fileSize int64) (Trailer, error) {
	if len(b) != TrailerSize || !bytes.HasPrefix(b, trailerMagic) {
		return Trailer{}, ErrNoTrailer
	}
	bad := func(format string, a ...any) (Trailer, error) {
		return Trailer{}, fmt.Errorf("%w: %s", ErrBadTrailer, fmt.Sprintf(format, a...))
	}
	if sum := sha256.Sum256(b[:offSum]); !bytes.Equal(sum[:], b[offSum:trailerUsed]) {
		return bad("its checksum does not match")
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[offVersion:]); v != trailerVersion {
		return bad("version %d, this binary reads version %d", v, trailerVersion)
	}
	alg := string(bytes.TrimRight(b[offAlg:offImage], "\x00"))
	if ty, dbs, hbs := le.Uint32(b[offType:]), le.Uint32(b[offDataBS:]), le.Uint32(b[offHashBS:]); ty != HashType || dbs != BlockSize || hbs != BlockSize || alg != Algorithm {
		return bad("format %d, %s, blocks %d/%d; want format %d, %s, %d/%d", ty, alg, dbs, hbs, HashType, Algorithm, BlockSize, BlockSize)
	}
	t := Trailer{ImageSize: int64(le.Uint64(b[offImage:])), DataBlocks: le.Uint64(b[offBlocks:]),
		HashOffset: int64(le.Uint64(b[offHashOff:])), HashBlocks: le.Uint64(b[offHashBlks:])}
	copy(t.Root[:], b[offRoot:])
	n := int(le.Uint16(b[offSaltLen:]))
	if n > maxSalt {
		return bad("salt of %d bytes", n)
	}
	t.Salt = append([]byte(nil), b[offSalt:offSalt+n]...)
	if err := t.check(fileSize); err != nil {
		return bad("%v", err)
	}
	return t, nil
}

// check is the consistency of the sizes with each other and with the file.
func (t Trailer) check(fileSize int64) error {
	const maxImage = 1 << 50 // 1 PiB: keeps the sums below far from overflow
	switch {
	case t.ImageSize <= 0 || t.ImageSize > maxImage:
		return fmt.Errorf("image size %d", t.ImageSize)
	case t.DataBlocks != DataBlocks(t.ImageSize):
		return fmt.Errorf("%d data blocks for %d bytes", t.DataBlocks, t.ImageSize)
	case t.HashOffset != int64(t.DataBlocks)*BlockSize:
		return fmt.Errorf("hash offset %d, want %d", t.HashOffset, int64(t.DataBlocks)*BlockSize)
	case t.HashBlocks != HashBlocks(t.DataBlocks):
		return fmt.Errorf("%d hash blocks, want %d", t.HashBlocks, HashBlocks(t.DataBlocks))
	case t.FileSize() != fileSize:
		return fmt.Errorf("it describes a file of %d bytes, the file has %d", t.FileSize(), fileSize)
	}
	return nil
}

// ReadTrailer reads the trailer of the image file r of size bytes.
func ReadTrailer(r io.ReaderAt, size int64) (Trailer, error) {
	if size < TrailerSize+BlockSize {
		return Trailer{}, ErrNoTrailer
	}
	b := make([]byte, TrailerSize)
	if _, err := r.ReadAt(b, size-TrailerSize); err != nil {
		return Trailer{}, fmt.Errorf("read the dm-verity trailer: %w", err)
	}
	return ParseTrailer(b, size)
}

// Append writes, at offset imageSize of w, what follows the image: zero
// padding to a block boundary, the tree's hash area and the trailer. The
// file then is Trailer.FileSize() bytes.
func Append(w io.WriterAt, tree Tree, imageSize int64) (Trailer, error) {
	t, err := NewTrailer(tree, imageSize)
	if err != nil {
		return Trailer{}, err
	}
	// Three writes, not one of a joined copy: the hash area is 8 MiB per
	// GiB of image, and a copy would double what the tree costs in memory.
	// A spilling Builder wrote the end of the hash area (level 0) already:
	// the trailer goes after it.
	hashEnd := t.HashOffset + int64(len(tree.Hash))
	for _, part := range []struct {
		b   []byte
		off int64
	}{
		{make([]byte, t.HashOffset-imageSize), imageSize},
		{tree.Hash, t.HashOffset},
		{t.Marshal(), hashEnd + tree.Spilled},
	} {
		if _, err := w.WriteAt(part.b, part.off); err != nil {
			return Trailer{}, fmt.Errorf("append the dm-verity hash tree: %w", err)
		}
	}
	return t, nil
}

// Overhead is how many bytes Append adds to an image of size bytes.
func Overhead(size int64) int64 {
	blocks := DataBlocks(size)
	return int64(blocks)*BlockSize - size + int64(HashBlocks(blocks))*BlockSize + TrailerSize
}

// Table is the device-mapper table line of the verity target over dev
// (e.g. /dev/loop0, or major:minor), which holds both the data and the
// tree: start, length in 512-byte sectors, target type "verity", and its
// arguments. Corruption is the default: an I/O error.
func (t Trailer) Table(dev string) (start, sectors uint64, target, params string) {
	salt := "-"
	if len(t.Salt) > 0 {
		salt = hex.EncodeToString(t.Salt)
	}
	params = fmt.Sprintf("%d %s %s %d %d %d %d %s %s %s", HashType, dev, dev, BlockSize, BlockSize,
		t.DataBlocks, uint64(t.HashOffset)/BlockSize, Algorithm, t.RootHex(), salt)
	return 0, t.DataBlocks * (BlockSize / 512), "verity", params
}
