package verity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"sync"
)

// The parameters of the tree: dm-verity format version 1 with sha256 and
// 4096-byte blocks on both sides.
const (
	BlockSize      = 4096
	DigestSize     = sha256.Size
	HashType       = 1 // dm-verity format version: salt prepended
	Algorithm      = "sha256"
	hashesPerBlock = BlockSize / DigestSize // 128
	hashPerBits    = 7                      // log2(hashesPerBlock)
	// maxLevels is the kernel's DM_VERITY_MAX_LEVELS.
	maxLevels = 63
)

// DefaultSalt is the salt of every tree this project makes: fixed, so that
// the root hash depends on the image bytes alone.
var DefaultSalt = func() []byte {
	s := sha256.Sum256([]byte("overlayupd dm-verity salt, version 1"))
	return s[:]
}()

// ErrEmpty is returned for an image of no bytes: dm-verity maps no data.
var ErrEmpty = errors.New("no data to protect")

// Tree is a computed hash tree.
type Tree struct {
	DataBlocks uint64           // 4096-byte blocks of data, the last zero-padded
	Salt       []byte           // prepended to every hashed block
	Root       [DigestSize]byte // the root hash
	// Hash is the hash area as it is stored after the data: every level,
	// top level first, each padded to whole blocks. Empty for one block.
	// From a spilling Builder it holds the levels above level 0 only:
	// level 0, the rest of the area, is written already (Spilled bytes).
	Hash    []byte
	Spilled int64
}

// DataBlocks is how many data blocks hold size bytes (the last one padded).
func DataBlocks(size int64) uint64 { return uint64((size + BlockSize - 1) / BlockSize) }

// LevelBlocks returns the number of hash blocks of each level, level 0 (the
// digests of the data blocks) first, for dataBlocks data blocks. It counts
// levels as the kernel does: none for one data block.
func LevelBlocks(dataBlocks uint64) []uint64 {
	var levels []uint64
	for l := 0; l < maxLevels && hashPerBits*l < 64 && (dataBlocks-1)>>(hashPerBits*l) != 0; l++ {
		levels = append(levels, ceilShift(dataBlocks, hashPerBits*(l+1)))
	}
	return levels
}

// ceilShift is x / 2^s rounded up, without overflow.
func ceilShift(x uint64, s int) uint64 {
	if s >= 64 {
		return min(x, 1)
	}
	n := x >> s
	if x&(1<<s-1) != 0 {
		n++
	}
	return n
}

// HashBlocks is the size of the hash area in blocks for dataBlocks.
func HashBlocks(dataBlocks uint64) uint64 {
	var n uint64
	for _, b := range LevelBlocks(dataBlocks) {
		n += b
	}
	return n
}

// Builder computes a tree from the data written to it, in any chunks. It
// keeps the level-0 digests in memory: 32 bytes per 4 KiB block, 8 MiB for
// a 1 GiB image; the upper levels are 1/128 of that each. A spilling
// Builder (NewSpillingBuilder) writes level 0 out instead.
type Builder struct {
	salt   []byte
	h      hash.Hash
	block  []byte // a partial block waiting for more data
	level0 []byte // digests of the full data blocks so far
	// level1 is the digests of the full blocks of level0 so far: hashed as
	// each fills, so that Tree, which runs after the last byte, has
	// 1/128 of the digests left to compute instead of all of a level.
	level1 []byte
	blocks uint64
	// hashes and digests are hashParallel's: a hasher per goroutine, and
	// the digests of one Write's blocks before they join level 0 in order.
	hashes  []*level0Hasher
	digests []byte

	// spill, for a spilling Builder (NewSpillingBuilder), is where level 0
	// goes, a block at a time as it fills, starting at spillAt; want is the
	// data blocks that layout is for.
	spill    io.WriterAt
	spillAt  int64
	spilled  int64
	spillErr error
	want     uint64
}

// NewBuilder starts a tree with salt (DefaultSalt when nil). sizeHint, when
// positive, is the expected data size, so the digests are allocated once.
func NewBuilder(salt []byte, sizeHint int64) *Builder {
	if salt == nil {
		salt = DefaultSalt
	}
	b := &Builder{salt: append([]byte(nil), salt...), h: sha256.New(), block: make([]byte, 0, BlockSize)}
	if sizeHint > 0 {
		d := DataBlocks(sizeHint)
		b.level0 = make([]byte, 0, d*DigestSize)
		b.level1 = make([]byte, 0, ceilShift(d, hashPerBits)*DigestSize)
	}
	return b
}

// NewSpillingBuilder is NewBuilder for data of exactly size bytes whose hash
// area starts at hashOffset in w (the file the data goes to): level 0, all
// but 1/128 of the tree, is written there a block at a time as it fills,
// so the tree costs 64 KiB of memory per GiB of data instead of 8 MiB, and
// memory stays flat with the image's size. Tree then returns the levels
// above level 0 in Hash, and says how much of the area is in w already
// (Spilled); a write error, or data of another size, is Tree's error.
func NewSpillingBuilder(salt []byte, size int64, w io.WriterAt, hashOffset int64) *Builder {
	b := NewBuilder(salt, 0)
	d := DataBlocks(size)
	b.level1 = make([]byte, 0, ceilShift(d, hashPerBits)*DigestSize)
	b.level0 = make([]byte, 0, BlockSize)
	b.spill, b.want = w, d
	if sizes := LevelBlocks(d); len(sizes) > 0 {
		b.spillAt = hashOffset + int64(HashBlocks(d)-sizes[0])*BlockSize
	}
	return b
}

// Write hashes p; it never fails.
func (b *Builder) Write(p []byte) (int, error) {
	n := len(p)
	if len(b.block) > 0 {
		k := min(BlockSize-len(b.block), len(p))
		b.block = append(b.block, p[:k]...)
		p = p[k:]
		if len(b.block) < BlockSize {
			return n, nil
		}
		b.hashData(b.block)
		b.block = b.block[:0]
	}
	if full := len(p) / BlockSize; full >= parallelMin {
		b.hashParallel(p[:full*BlockSize])
		p = p[full*BlockSize:]
	}
	for len(p) >= BlockSize {
		b.hashData(p[:BlockSize])
		p = p[BlockSize:]
	}
	b.block = append(b.block, p...)
	return n, nil
}

// parallelMin is the number of whole data blocks in one Write from which
// their digests are computed on several goroutines (256 KiB).
const parallelMin = 64

// hashParallel hashes the whole blocks of p, in order, their digests
// computed on one goroutine per CPU. Why: level 0 is all but 1/128 of the
// tree's work and its blocks are independent; on a signed-digest apply the
// tree is the only hash of the copy (no sha256 lane), and on one goroutine
// it was the copy's critical path with the other core half idle.
func (b *Builder) hashParallel(p []byte) {
	blocks := len(p) / BlockSize
	workers := min(runtime.GOMAXPROCS(0), blocks/(parallelMin/2))
	if workers < 1 {
		workers = 1
	}
	for len(b.hashes) < workers {
		l := &level0Hasher{h: sha256.New()}
		if useX16 && haveX16() {
			l.x = newX16(b.salt)
		}
		b.hashes = append(b.hashes, l)
	}
	b.digests = slices.Grow(b.digests[:0], blocks*DigestSize)[:blocks*DigestSize]
	if workers == 1 {
		b.hashes[0].hash(b.salt, p, b.digests)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			// Shares that differ by one block at most, none empty (workers <=
			// blocks): lo <= hi for any GOMAXPROCS.
			lo, hi := w*blocks/workers, (w+1)*blocks/workers
			wg.Add(1)
			go func(l *level0Hasher) {
				defer wg.Done()
				l.hash(b.salt, p[lo*BlockSize:hi*BlockSize], b.digests[lo*DigestSize:hi*DigestSize])
			}(b.hashes[w])
		}
		wg.Wait()
	}
	for i := range blocks {
		b.addDigest(b.digests[i*DigestSize : (i+1)*DigestSize])
	}
}

// level0Hasher is one goroutine's hashes for level 0: 16 blocks at a time
// where the CPU allows it (x, see x16.go), one at a time with h otherwise
// and for the last blocks of a range.
type level0Hasher struct {
	h hash.Hash
	x *x16
}

// hash writes sha256(salt || block) of each whole block of p to digests.
func (l *level0Hasher) hash(salt, p, digests []byte) {
	blocks := len(p) / BlockSize
	i := 0
	if l.x != nil {
		for ; i+16 <= blocks; i += 16 {
			l.x.sum16(p[i*BlockSize:(i+16)*BlockSize], digests[i*DigestSize:(i+16)*DigestSize])
		}
	}
	for ; i < blocks; i++ {
		l.h.Reset()
		l.h.Write(salt)
		l.h.Write(p[i*BlockSize : (i+1)*BlockSize])
		l.h.Sum(digests[i*DigestSize : i*DigestSize : (i+1)*DigestSize])
	}
}

func (b *Builder) hashData(block []byte) {
	b.level0 = b.digest(b.level0, block)
	b.filled()
}

// addDigest appends the digest d of the next data block to level 0.
func (b *Builder) addDigest(d []byte) {
	b.level0 = append(b.level0, d...)
	b.filled()
}

// filled counts the data block whose digest level 0 just got, and hashes
// (and spills) level 0's block when that digest completed it.
func (b *Builder) filled() {
	b.blocks++
	if n := len(b.level0); n%BlockSize == 0 {
		b.level1 = b.digest(b.level1, b.level0[n-BlockSize:])
		if b.spill != nil {
			b.spillBlock(b.level0[n-BlockSize:])
			b.level0 = b.level0[:0]
		}
	}
}

// spillBlock writes the next block of level 0 to the spill; the first
// error is kept for Tree.
func (b *Builder) spillBlock(p []byte) {
	if b.spillErr == nil {
		if _, err := b.spill.WriteAt(p, b.spillAt+b.spilled); err != nil {
			b.spillErr = err
		}
	}
	b.spilled += int64(len(p))
}

// digest appends sha256(salt || block) to dst.
func (b *Builder) digest(dst, block []byte) []byte {
	b.h.Reset()
	b.h.Write(b.salt)
	b.h.Write(block)
	return b.h.Sum(dst)
}

// Tree finishes the tree: the last partial block is hashed zero-padded, and
// the upper levels are computed. The Builder must not be written after.
func (b *Builder) Tree() (Tree, error) {
	if len(b.block) > 0 {
		full := append(b.block, make([]byte, BlockSize-len(b.block))...)
		b.hashData(full)
		b.block = b.block[:0]
	}
	if b.blocks == 0 {
		return Tree{}, ErrEmpty
	}
	if b.spill != nil && b.blocks != b.want {
		return Tree{}, fmt.Errorf("hash tree: %d data blocks, laid out for %d", b.blocks, b.want)
	}
	t := Tree{DataBlocks: b.blocks, Salt: b.salt}
	if b.blocks == 1 {
		copy(t.Root[:], b.level0) // no hash area: nothing spills
		return t, nil
	}
	if b.spill != nil {
		return b.spillTree(t)
	}
	sizes := LevelBlocks(b.blocks)
	offs, total := layout(sizes)
	area := make([]byte, total)
	copy(area[offs[0]:], b.level0) // zero-padded to its blocks
	var top []byte
	for i, n := range sizes {
		cur := area[offs[i] : offs[i]+int(n)*BlockSize]
		var next []byte
		if i+1 < len(sizes) {
			next = area[offs[i+1]:offs[i+1]]
		}
		off := 0
		if i == 0 {
			// The full blocks of level 0 are hashed already (level1);
			// padding changed only the last one.
			next = append(next, b.level1...)
			off = len(b.level1) / DigestSize * BlockSize
		}
		for ; off < len(cur); off += BlockSize {
			next = b.digest(next, cur[off:off+BlockSize])
		}
		top = next
	}
	if len(top) != DigestSize {
		return Tree{}, fmt.Errorf("internal error: the top level of %d blocks gave %d bytes of digests", b.blocks, len(top))
	}
	copy(t.Root[:], top)
	t.Hash = area
	return t, nil
}

// spillTree is Tree for a spilling Builder: the last block of level 0,
// zero-padded, goes to the spill and into level 1, and the levels above
// are computed in memory from level 1.
func (b *Builder) spillTree(t Tree) (Tree, error) {
	if len(b.level0) > 0 {
		last := append(b.level0, make([]byte, BlockSize-len(b.level0))...)
		b.level1 = b.digest(b.level1, last)
		b.spillBlock(last)
		b.level0 = b.level0[:0]
	}
	if b.spillErr != nil {
		return Tree{}, fmt.Errorf("write the hash tree: %w", b.spillErr)
	}
	sizes := LevelBlocks(b.blocks)
	upper := sizes[1:]
	offs, total := layout(upper) // offs[i]: level i+1
	area := make([]byte, total)
	next := b.level1
	for i, n := range upper {
		cur := area[offs[i] : offs[i]+int(n)*BlockSize]
		copy(cur, next) // the level's digests, zero-padded to its blocks
		next = nil
		for off := 0; off < len(cur); off += BlockSize {
			next = b.digest(next, cur[off:off+BlockSize])
		}
	}
	if len(next) != DigestSize {
		return Tree{}, fmt.Errorf("internal error: the top level of %d blocks gave %d bytes of digests", b.blocks, len(next))
	}
	copy(t.Root[:], next)
	t.Hash, t.Spilled = area, b.spilled
	return t, nil
}

// layout places levels of the given sizes (in blocks, lowest first) in a
// hash area, highest level first: offs[i] is where levels[i] starts, total
// the area's size in bytes.
func layout(levels []uint64) (offs []int, total int) {
	offs = make([]int, len(levels))
	for i := len(levels) - 1; i >= 0; i-- {
		offs[i] = total
		total += int(levels[i]) * BlockSize
	}
	return offs, total
}

// Compute reads r to its end and returns its tree, with salt (nil: DefaultSalt).
func Compute(r io.Reader, salt []byte) (Tree, error) {
	b := NewBuilder(salt, 0)
	if _, err := io.CopyBuffer(b, struct{ io.Reader }{r}, make([]byte, 1<<20)); err != nil {
		return Tree{}, fmt.Errorf("hash tree: read: %w", err)
	}
	return b.Tree()
}
