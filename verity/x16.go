package verity

import "encoding/binary"

// Why a 16-lane SHA-256 of our own: the tree's level 0 is one
// sha256(salt || block) per 4 KiB data block, hundreds of thousands of
// independent messages of one length, and on an apply it runs beside the
// image's own sha256 on a 2-core machine. crypto/sha256 hashes one message
// at a time (SHA-NI, about 1.3 GB/s a core here); blockX16 runs the same
// compression function on 16 messages in the 32-bit lanes of the AVX-512
// registers, about twice that (BenchmarkLevel0). The digests are checked
// against crypto/sha256's for every salt length class (TestX16) and the
// whole tree against the one-at-a-time path (TestBuilderX16); the upper
// levels, 1/128 of the work, stay on crypto/sha256.

// useX16 is whether Builders hash level 0 sixteen blocks at a time where
// the CPU can (haveX16); a variable so tests can compare both paths on one
// machine.
var useX16 = true

// sha256IV is SHA-256's initial hash value (FIPS 180-4, 5.3.3).
var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// x16 computes sha256(salt || block) for 16 data blocks at a time. Each
// message is cut in three parts that blockX16 reads in place or from
// buffers laid out once: the prefix (the salt and the first data bytes
// that fill its last message block, copied), the middle (whole message
// blocks read from the data itself), and the tail (the last data bytes,
// the padding and the length, copied).
type x16 struct {
	state [8][16]uint32
	idx   [16]int32
	salt  int
	// d0 is the data bytes in the prefix, tailFrom where the tail's data
	// starts; pre, mid and post count message blocks of each part.
	d0, tailFrom    int
	pre, mid, post  int
	prefix, postfix []byte // 16 lanes each
}

func newX16(salt []byte) *x16 {
	s := len(salt)
	x := &x16{salt: s, d0: (64 - s%64) % 64}
	x.pre = (s + x.d0) / 64
	x.mid = (BlockSize - x.d0) / 64
	x.tailFrom = x.d0 + 64*x.mid
	rest := BlockSize - x.tailFrom
	x.post = (rest + 1 + 8 + 63) / 64 // the 0x80 byte and the 64-bit length fit
	x.prefix = make([]byte, 16*64*x.pre)
	for l := range 16 {
		copy(x.prefix[l*64*x.pre:], salt)
	}
	x.postfix = make([]byte, 16*64*x.post)
	for l := range 16 {
		t := x.postfix[l*64*x.post : (l+1)*64*x.post]
		t[rest] = 0x80
		binary.BigEndian.PutUint64(t[len(t)-8:], uint64(s+BlockSize)*8)
	}
	return x
}

// sum16 writes the digests of the 16 blocks of p (16*BlockSize bytes) to
// out (16*DigestSize bytes), in order.
func (x *x16) sum16(p, out []byte) {
	_, _ = p[16*BlockSize-1], out[16*DigestSize-1]
	for w := range 8 {
		for l := range 16 {
			x.state[w][l] = sha256IV[w]
		}
	}
	if x.pre > 0 {
		for l := range 16 {
			copy(x.prefix[l*64*x.pre+x.salt:(l+1)*64*x.pre], p[l*BlockSize:l*BlockSize+x.d0])
		}
		x.run(x.prefix, 64*x.pre, x.pre)
	}
	if x.mid > 0 {
		x.run(p[x.d0:], BlockSize, x.mid)
	}
	for l := range 16 {
		copy(x.postfix[l*64*x.post:], p[l*BlockSize+x.tailFrom:(l+1)*BlockSize])
	}
	x.run(x.postfix, 64*x.post, x.post)
	for l := range 16 {
		for w := range 8 {
			binary.BigEndian.PutUint32(out[l*DigestSize+4*w:], x.state[w][l])
		}
	}
}

// run compresses n blocks of each lane, lane l's starting at base[l*stride].
func (x *x16) run(base []byte, stride, n int) {
	_ = base[15*stride+64*n-1] // every lane's blocks are in base
	for l := range 16 {
		x.idx[l] = int32(l * stride)
	}
	blockX16(&x.state, &base[0], &x.idx, n)
}
