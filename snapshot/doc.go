// Package snapshot owns btrfs subvolumes as store entries: the btrfs store's
// trampoline.Format (entries are read-only subvolumes in the slot directory,
// deleted by ID, mounted as a read-only bind, identified by subvolume ID), and
// the subvolume operations the commands need.
//
// Two layers:
//
//   - ioctl_linux.go and subvol_linux.go are pure Go (golang.org/x/sys/unix):
//     the read-only flag, delete by ID (SNAP_DESTROY_V2), the subvolume ID
//     (INO_LOOKUP), its info (GET_SUBVOL_INFO, no tree search), and the
//     default subvolume (one TREE_SEARCH). The PID-1 path needs only these,
//     so it stays free of cgo.
//   - create_linux.go wraps github.com/containerd/btrfs/v2 (cgo) for creating
//     and snapshotting subvolumes, which only the commands do. It works
//     around that library's traps: SubvolSnapshot takes (dst, src); its mount
//     lookup is wrong for subvol= and bind mounts, so only absolute paths
//     under a subvolid=5 mount are passed; SubvolDelete walks the whole tree,
//     so deletion is by ID here; IsSubvolume compares the filesystem magic as
//     a signed int, wrong on 32-bit ARM, so isSubvolume here compares uint32.
//     Built without cgo (or with the overlayupd_omit_btrfs tag), those
//     operations say that btrfs support is not built in.
package snapshot
