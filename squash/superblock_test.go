package squash

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func validSuperblock() Superblock {
	return Superblock{Inodes: 5, ModTime: 1700000000, BlockSize: 131072, Compression: compZstd, BlockLog: 17,
		IDCount: 1, Major: 4, RootInode: 0x20, BytesUsed: 8192, IDTable: 8000, XattrTable: noTable,
		InodeTable: 4096, DirTable: 6000, FragTable: 7000, ExportTable: 7500}
}

func TestParseSuperblock(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Superblock)
		want error
	}{
		{"valid", func(*Superblock) {}, nil},
		{"4K blocks", func(s *Superblock) { s.BlockSize, s.BlockLog = 4096, 12 }, nil},
		{"1M blocks", func(s *Superblock) { s.BlockSize, s.BlockLog = 1<<20, 20 }, nil},
		{"2M blocks", func(s *Superblock) { s.BlockSize, s.BlockLog = 2<<20, 21 }, ErrBadSuperblock},
		{"2K blocks", func(s *Superblock) { s.BlockSize, s.BlockLog = 2048, 11 }, ErrBadSuperblock},
		{"not power of two", func(s *Superblock) { s.BlockSize = 131073 }, ErrBadSuperblock},
		{"block log mismatch", func(s *Superblock) { s.BlockLog = 16 }, ErrBadSuperblock},
		{"block log huge", func(s *Superblock) { s.BlockLog = 49 }, ErrBadSuperblock},
		{"version 4.1", func(s *Superblock) { s.Minor = 1 }, ErrBadSuperblock},
		{"compression 0", func(s *Superblock) { s.Compression = 0 }, ErrUnsupportedCompression},
		{"compression 7", func(s *Superblock) { s.Compression = 7 }, ErrUnsupportedCompression},
		{"no inodes", func(s *Superblock) { s.Inodes = 0 }, ErrBadSuperblock},
		{"no ids", func(s *Superblock) { s.IDCount = 0 }, ErrBadSuperblock},
		{"bytes_used tiny", func(s *Superblock) { s.BytesUsed = 10 }, ErrBadSuperblock},
		{"inode table inside superblock", func(s *Superblock) { s.InodeTable = 50 }, ErrBadSuperblock},
		{"dir before inode table", func(s *Superblock) { s.DirTable = 4000 }, ErrBadSuperblock},
		{"dir table past end", func(s *Superblock) { s.DirTable = 9000 }, ErrBadSuperblock},
		{"id table past end", func(s *Superblock) { s.IDTable = 8192 }, ErrBadSuperblock},
		{"fragment table past end", func(s *Superblock) { s.FragTable = 1 << 40 }, ErrBadSuperblock},
		{"no fragment table", func(s *Superblock) { s.FragTable = noTable }, nil},
		{"root inode outside table", func(s *Superblock) { s.RootInode = 5000 << 16 }, ErrBadSuperblock},
		{"root inode offset too big", func(s *Superblock) { s.RootInode = 8192 }, ErrBadSuperblock},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validSuperblock()
			tc.edit(&s)
			got, err := ParseSuperblock(s.Marshal())
			if tc.want == nil {
				if err != nil || got != s {
					t.Fatalf("ParseSuperblock = %+v, %v; want %+v", got, err, s)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseSuperblock error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckMagic(t *testing.T) {
	ext4 := make([]byte, 2048)
	ext4[1080], ext4[1081] = 0x53, 0xEF
	btrfs := make([]byte, 0x10048)
	copy(btrfs[0x10040:], "_BHRfS_M")
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"ext4", ext4, "ext2/3/4"},
		{"btrfs", btrfs, "btrfs"},
		{"gzip", append([]byte{0x1f, 0x8b, 8}, make([]byte, 100)...), "gzip"},
		{"xz", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 100)...), "xz"},
		{"zstd", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 100)...), "zstd"},
		{"big endian", append([]byte("sqsh"), make([]byte, 100)...), "big-endian"},
		{"zeros", make([]byte, 100), "bad magic"},
	}
	for _, tc := range cases {
		_, err := ParseSuperblock(tc.data)
		if !errors.Is(err, ErrNotSquashfs) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: ParseSuperblock error = %v, want ErrNotSquashfs mentioning %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseSuperblock: never panics; an accepted superblock is self-consistent
// and round-trips to the same bytes.
func FuzzParseSuperblock(f *testing.F) {
	f.Add(validSuperblock().Marshal())
	f.Add([]byte{})
	f.Add([]byte("hsqs"))
	if data, err := os.ReadFile("testdata/seed.sqsh"); err == nil {
		f.Add(data[:min(len(data), SuperblockSize)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSuperblock(b)
		if err != nil {
			if s != (Superblock{}) {
				t.Fatalf("error %v with non-zero superblock %+v", err, s)
			}
			return
		}
		if s.BlockSize != 1<<s.BlockLog || s.BlockSize < 4096 || s.BlockSize > 1<<20 {
			t.Fatalf("accepted block size %d / log %d", s.BlockSize, s.BlockLog)
		}
		if s.Major != 4 || s.Minor != 0 || compNames[s.Compression] == "" {
			t.Fatalf("accepted version %d.%d compression %d", s.Major, s.Minor, s.Compression)
		}
		if !(SuperblockSize <= s.InodeTable && s.InodeTable < s.DirTable && s.DirTable < s.BytesUsed && s.IDTable < s.BytesUsed) {
			t.Fatalf("accepted table layout %+v", s)
		}
		if !bytes.Equal(s.Marshal(), b[:SuperblockSize]) {
			t.Fatalf("round trip differs")
		}
	})
}
