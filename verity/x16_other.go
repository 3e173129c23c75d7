//go:build !amd64 || purego

package verity

func haveX16() bool { return false }

func blockX16(*[8][16]uint32, *byte, *[16]int32, int) {
	panic("verity: blockX16 without AVX-512")
}
