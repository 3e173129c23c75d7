//go:build amd64 && !purego

package verity

import "sync"

//go:generate go run ./internal/x16gen

// blockX16 runs the SHA-256 compression function over nblocks 64-byte
// message blocks of 16 messages at once: lane i's blocks start at
// base+idx[i], one after the other, and its state is state[0..7][i].
//
//go:noescape
func blockX16(state *[8][16]uint32, base *byte, idx *[16]int32, nblocks int)

// haveX16 says whether blockX16 can run here: the CPU has AVX-512 F (the
// 32-bit lane operations) and BW (the byte shuffle), and the OS saves the
// registers (XCR0: the SSE, AVX, opmask and both ZMM states).
//
// Why not golang.org/x/sys/cpu, which says the same: importing it links
// its init and tables into every binary that links this package,
// init-overlay included, which builds no tree (12 KB, issue 13's boot
// budget). These two instructions are all the check needs.
func haveX16() bool {
	x16Once.Do(func() { x16OK = detectX16() })
	return x16OK
}

var (
	x16Once sync.Once
	x16OK   bool
)

func detectX16() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	if _, _, ecx, _ := cpuid(1, 0); ecx&(1<<27) == 0 { // OSXSAVE: XGETBV is there
		return false
	}
	const avx512State = 1<<1 | 1<<2 | 1<<5 | 1<<6 | 1<<7
	if xgetbv0()&avx512State != avx512State {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<16) != 0 && ebx&(1<<30) != 0 // AVX512F, AVX512BW
}

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() uint32
