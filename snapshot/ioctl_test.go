package snapshot

import (
	"encoding/binary"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioc is the kernel's generic _IOC encoding.
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | btrfsIoctlMagic<<8 | nr
}

const (
	iocWrite = 1
	iocRead  = 2
)

// TestIoctlNumbers recomputes every ioctl number from its direction, number
// and the size of the struct this package passes, so a wrong layout or a
// typo in a constant fails here rather than on a device.
func TestIoctlNumbers(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"TREE_SEARCH", iocTreeSearch, ioc(iocRead|iocWrite, 17, unsafe.Sizeof(searchArgs{}))},
		{"INO_LOOKUP", iocInoLookup, ioc(iocRead|iocWrite, 18, unsafe.Sizeof(inoLookupArgs{}))},
		{"SUBVOL_GETFLAGS", iocSubvolGetflag, ioc(iocRead, 25, 8)},
		{"SUBVOL_SETFLAGS", iocSubvolSetflag, ioc(iocWrite, 26, 8)},
		{"GET_SUBVOL_INFO", iocGetSubvolInfo, ioc(iocRead, 60, unsafe.Sizeof(subvolInfo{}))},
		{"SNAP_DESTROY_V2", iocSnapDestroyV2, ioc(iocWrite, 63, unsafe.Sizeof(volArgsV2{}))},
		{"SYNC", iocSync, ioc(0, 8, 0)},
		{"FS_INFO", iocFsInfo, ioc(iocRead, 31, unsafe.Sizeof(fsInfoArgs{}))},
	} {
		if tc.got != tc.want {
			t.Errorf("BTRFS_IOC_%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

// TestStructLayouts checks sizes and the offsets the kernel reads.
func TestStructLayouts(t *testing.T) {
	var v volArgsV2
	var s subvolInfo
	var k searchArgs
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof vol_args_v2", unsafe.Sizeof(v), 4096},
		{"vol_args_v2.flags", unsafe.Offsetof(v.flags), 16},
		{"vol_args_v2.subvolid", unsafe.Offsetof(v.subvolid), 56},
		{"sizeof ino_lookup_args", unsafe.Sizeof(inoLookupArgs{}), 4096},
		{"sizeof get_subvol_info_args", unsafe.Sizeof(s), 504},
		{"get_subvol_info.parent_id", unsafe.Offsetof(s.parentID), 264},
		{"get_subvol_info.flags", unsafe.Offsetof(s.flags), 288},
		{"get_subvol_info.uuid", unsafe.Offsetof(s.uuid), 296},
		{"get_subvol_info.parent_uuid", unsafe.Offsetof(s.parentUUID), 312},
		{"get_subvol_info.received_uuid", unsafe.Offsetof(s.receivedUUID), 328},
		{"get_subvol_info.ctransid", unsafe.Offsetof(s.ctransid), 344},
		{"get_subvol_info.otime", unsafe.Offsetof(s.otime), 392},
		{"sizeof search_key", unsafe.Sizeof(k.key), 104},
		{"search_key.min_type", unsafe.Offsetof(k.key.minType), 56},
		{"search_key.nr_items", unsafe.Offsetof(k.key.nrItems), 64},
		{"sizeof search_args", unsafe.Sizeof(k), 4096},
		{"sizeof fs_info_args", unsafe.Sizeof(fsInfoArgs{}), 1024},
		{"fs_info.fsid", unsafe.Offsetof(fsInfoArgs{}.fsid), 16},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

// searchItem lays out one TREE_SEARCH result: the native-endian header and a
// little-endian dir item naming name, pointing at id.
func searchItem(typ uint32, name string, id uint64) []byte {
	item := make([]byte, 30+len(name))
	binary.LittleEndian.PutUint64(item[0:], id)
	binary.LittleEndian.PutUint16(item[27:], uint16(len(name)))
	copy(item[30:], name)
	h := make([]byte, searchHeaderSize)
	binary.NativeEndian.PutUint32(h[24:], typ)
	binary.NativeEndian.PutUint32(h[28:], uint32(len(item)))
	return append(h, item...)
}

func TestDefaultFromSearch(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  []byte
		n    uint32
		want uint64
	}{
		{"default only", searchItem(dirItemKey, "default", 257), 1, 257},
		{"after another item", append(searchItem(dirItemKey, "other", 9), searchItem(dirItemKey, "default", 300)...), 2, 300},
		{"wrong key type", searchItem(1, "default", 257), 1, 0},
		{"truncated", searchItem(dirItemKey, "default", 257)[:40], 1, 0},
		{"none", nil, 0, 0},
	} {
		if got := defaultFromSearch(tc.buf, tc.n); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestOffsetsFromSearch(t *testing.T) {
	item := func(typ uint32, offset uint64) []byte {
		h := make([]byte, searchHeaderSize+4)
		binary.NativeEndian.PutUint64(h[16:], offset)
		binary.NativeEndian.PutUint32(h[24:], typ)
		binary.NativeEndian.PutUint32(h[28:], 4)
		return h
	}
	buf := append(append(item(orphanItemKey, 258), item(1, 9)...), item(orphanItemKey, 300)...)
	got := offsetsFromSearch(buf, 3, orphanItemKey)
	if len(got) != 2 || got[0] != 258 || got[1] != 300 {
		t.Errorf("got %v, want [258 300]", got)
	}
	if got := offsetsFromSearch(buf[:40], 3, orphanItemKey); len(got) != 1 {
		t.Errorf("truncated: got %v, want the one whole item", got)
	}
}

// statfsOfType is a Statfs_t whose f_type the kernel filled with word: the
// kernel writes f_type as a word of the field's own width (32 bits on
// 32-bit ARM, 64 on amd64 and arm64), so on armhf the Go int32 field reads
// the btrfs magic as a negative number. A 32-bit field keeps word's low
// half.
func statfsOfType(word uint64) *unix.Statfs_t {
	var st unix.Statfs_t
	b := unsafe.Slice((*byte)(unsafe.Pointer(&st.Type)), unsafe.Sizeof(st.Type))
	if len(b) == 4 {
		binary.NativeEndian.PutUint32(b, uint32(word))
	} else {
		binary.NativeEndian.PutUint64(b, word)
	}
	return &st
}

// TestBtrfsMagic: the btrfs check goes through this architecture's own
// Statfs_t, filled as the kernel fills it. Under make test-arm-unit it runs
// on armhf, where f_type is an int32 and the magic is negative: a signed
// comparison with BTRFS_SUPER_MAGIC (containerd/btrfs's) fails there. A
// sign-extended value (a careless widening) is taken too; other
// filesystems' magics are not.
func TestBtrfsMagic(t *testing.T) {
	var magic uint32 = 0x9123683e
	st := statfsOfType(uint64(magic))
	t.Logf("%s: Statfs_t.Type is %d bytes, reads the btrfs magic as %d", runtime.GOARCH, unsafe.Sizeof(st.Type), st.Type)
	if unsafe.Sizeof(st.Type) == 4 && int64(st.Type) >= 0 {
		t.Fatalf("the test's premise: a 32-bit f_type should read the magic as negative, got %d", st.Type)
	}
	if !isBtrfsStatfs(st) {
		t.Errorf("isBtrfsStatfs(the kernel's btrfs magic %d) = false", st.Type)
	}
	signExtended := statfsOfType(uint64(int64(int32(magic))))
	if !isBtrfsStatfs(signExtended) {
		t.Errorf("isBtrfsStatfs(the sign-extended magic %d) = false", signExtended.Type)
	}
	for _, other := range []uint64{0xef53 /* ext4 */, 0x73717368 /* squashfs */, 0x01021994 /* tmpfs */, 0x794c7630 /* overlay */} {
		if isBtrfsStatfs(statfsOfType(other)) {
			t.Errorf("magic %#x taken for btrfs", other)
		}
	}
}
