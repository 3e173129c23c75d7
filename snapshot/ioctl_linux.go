package snapshot

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls this package issues, with the kernel's struct layouts
// (include/uapi/linux/btrfs.h). x/sys/unix has none of them. Numbers use the
// generic _IOC encoding (amd64, arm64, arm, riscv); ioctlNumbers in the tests
// recomputes each from its direction, number and argument size.
const (
	btrfsIoctlMagic = 0x94

	iocTreeSearch    = 0xd0009411 // _IOWR(0x94, 17, struct btrfs_ioctl_search_args)
	iocInoLookup     = 0xd0009412 // _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
	iocSubvolGetflag = 0x80089419 // _IOR(0x94, 25, __u64)
	iocSubvolSetflag = 0x4008941a // _IOW(0x94, 26, __u64)
	iocGetSubvolInfo = 0x81f8943c // _IOR(0x94, 60, struct btrfs_ioctl_get_subvol_info_args)
	iocSnapDestroyV2 = 0x5000943f // _IOW(0x94, 63, struct btrfs_ioctl_vol_args_v2)
	iocSync          = 0x9408     // _IO(0x94, 8): commit, and wake the threads that free deleted subvolumes
	iocFsInfo        = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)

	subvolRdonly    = 1 << 1     // BTRFS_SUBVOL_RDONLY: SUBVOL_GETFLAGS/SETFLAGS
	rootRdonly      = 1 << 0     // BTRFS_ROOT_SUBVOL_RDONLY: the root item's flags, in GET_SUBVOL_INFO
	subvolSpecByID  = 1 << 4     // BTRFS_SUBVOL_SPEC_BY_ID
	firstFreeObject = 256        // BTRFS_FIRST_FREE_OBJECTID: the root directory of a subvolume
	fsTreeObjectID  = 5          // BTRFS_FS_TREE_OBJECTID: the top level
	rootTreeID      = 1          // BTRFS_ROOT_TREE_OBJECTID
	rootTreeDirID   = 6          // BTRFS_ROOT_TREE_DIR_OBJECTID
	dirItemKey      = 84         // BTRFS_DIR_ITEM_KEY
	orphanItemKey   = 48         // BTRFS_ORPHAN_ITEM_KEY
	rootRefKey      = 156        // BTRFS_ROOT_REF_KEY: (parent, ROOT_REF, child) in the root tree
	orphanObjectID  = ^uint64(4) // BTRFS_ORPHAN_OBJECTID (-5ULL): a deleted subvolume the cleaner has not freed yet
)

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes): fd, transid,
// flags, 32 bytes of union, then the name or, with SPEC_BY_ID, the subvolid.
type volArgsV2 struct {
	fd       int64
	transid  uint64
	flags    uint64
	unused   [4]uint64
	subvolid uint64 // union with name[4040]
	_        [4040 - 8]byte
}

// inoLookupArgs is struct btrfs_ioctl_ino_lookup_args (4096 bytes).
type inoLookupArgs struct {
	treeid   uint64
	objectid uint64
	name     [4080]byte
}

// subvolInfo is struct btrfs_ioctl_get_subvol_info_args (504 bytes).
type subvolInfo struct {
	treeid       uint64
	name         [256]byte
	parentID     uint64
	dirID        uint64
	generation   uint64
	flags        uint64
	uuid         [16]byte
	parentUUID   [16]byte
	receivedUUID [16]byte
	ctransid     uint64
	otransid     uint64
	stransid     uint64
	rtransid     uint64
	ctime        [16]byte
	otime        [16]byte
	stime        [16]byte
	rtime        [16]byte
	reserved     [8]uint64
}

// fsInfoArgs is struct btrfs_ioctl_fs_info_args (1024 bytes); only the
// filesystem's UUID is read.
type fsInfoArgs struct {
	maxID      uint64
	numDevices uint64
	fsid       [16]byte
	_          [1024 - 32]byte
}

// searchKey is struct btrfs_ioctl_search_key (104 bytes); searchArgs adds
// the result buffer (4096 bytes in all).
type searchKey struct {
	treeID                   uint64
	minObjectID, maxObjectID uint64
	minOffset, maxOffset     uint64
	minTransid, maxTransid   uint64
	minType, maxType         uint32
	nrItems                  uint32
	_                        uint32
	_                        [4]uint64
}

type searchArgs struct {
	key searchKey
	buf [4096 - 104]byte
}

// searchHeader is struct btrfs_ioctl_search_header, before each item in buf.
const searchHeaderSize = 32

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// defaultFromSearch reads the default subvolume's ID out of a TREE_SEARCH
// result: the "default" dir item of the root tree directory, whose location
// key's objectid is the subvolume. It returns 0 when the item is not there.
func defaultFromSearch(buf []byte, n uint32) uint64 {
	off := 0
	for range n {
		if off+searchHeaderSize > len(buf) {
			return 0
		}
		h := buf[off : off+searchHeaderSize]
		typ, ln := binary.NativeEndian.Uint32(h[24:]), int(binary.NativeEndian.Uint32(h[28:]))
		off += searchHeaderSize
		if off+ln > len(buf) {
			return 0
		}
		item := buf[off : off+ln]
		off += ln
		// struct btrfs_dir_item: location (objectid le64, type u8, offset
		// le64), transid le64, data_len le16, name_len le16, type u8, name.
		const nameAt = 17 + 8 + 2 + 2 + 1
		if typ != dirItemKey || len(item) < nameAt {
			continue
		}
		nameLen := int(binary.LittleEndian.Uint16(item[27:]))
		if nameAt+nameLen <= len(item) && string(item[nameAt:nameAt+nameLen]) == "default" {
			return binary.LittleEndian.Uint64(item[0:])
		}
	}
	return 0
}

// offsetsFromSearch returns the key offsets of the items of type typ in a
// TREE_SEARCH result (for orphan items: the IDs of deleted subvolumes).
func offsetsFromSearch(buf []byte, n uint32, typ uint32) []uint64 {
	var out []uint64
	off := 0
	for range n {
		if off+searchHeaderSize > len(buf) {
			break
		}
		h := buf[off : off+searchHeaderSize]
		if binary.NativeEndian.Uint32(h[24:]) == typ {
			out = append(out, binary.NativeEndian.Uint64(h[16:]))
		}
		off += searchHeaderSize + int(binary.NativeEndian.Uint32(h[28:]))
	}
	return out
}
