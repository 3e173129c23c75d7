package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

// Errors of this package, for errors.Is.
var (
	ErrNotBtrfs  = errors.New("not on btrfs")
	ErrNotSubvol = errors.New("not a btrfs subvolume")
	ErrInUse     = errors.New("subvolume is mounted")
	ErrNested    = errors.New("nested subvolumes")
	// ErrNotBuilt is what making a subvolume gets from a build without cgo
	// or with overlayupd_omit_btrfs (Built is false).
	ErrNotBuilt = errors.New("btrfs support is not built into this binary (it was built without cgo or with overlayupd_omit_btrfs): use a build of 'make build'")
)

// openDir opens path as a directory without following a final symlink.
func openDir(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// isBtrfs reports whether f is on btrfs.
func isBtrfs(f *os.File) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", f.Name(), err)
	}
	return isBtrfsStatfs(&st), nil
}

// isBtrfsStatfs reports whether st, as fstatfs filled it, is a btrfs's.
// Why the comparison on 32 bits, from the architecture's own field:
// Statfs_t.Type is an int64 on amd64 and arm64 but an int32 on 32-bit ARM,
// where the magic 0x9123683e reads as a negative number; widened, it stays
// negative, so a signed comparison with the constant (the bug in
// containerd/btrfs's IsSubvolume) says "not btrfs" on an armhf board.
func isBtrfsStatfs(st *unix.Statfs_t) bool {
	return uint32(st.Type) == uint32(unix.BTRFS_SUPER_MAGIC)
}

// IsSubvolume reports whether path is the root directory of a btrfs
// subvolume (inode 256 on btrfs). A symlink is not followed and is not one.
func IsSubvolume(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, nil
	}
	f, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return isSubvolume(f)
}

func isSubvolume(f *os.File) (bool, error) {
	ok, err := isBtrfs(f)
	if err != nil || !ok {
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return st.Ino == firstFreeObject, nil
}

// ID returns the ID of the subvolume that holds path (its own, for a
// subvolume's root directory), with INO_LOOKUP, which needs no privileges
// on current kernels.
func ID(path string) (uint64, error) {
	f, err := openDir(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return fdID(f)
}

func fdID(f *os.File) (uint64, error) {
	if ok, err := isBtrfs(f); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("%s: %w", f.Name(), ErrNotBtrfs)
	}
	args := inoLookupArgs{objectid: firstFreeObject}
	if err := ioctl(int(f.Fd()), iocInoLookup, unsafe.Pointer(&args)); err != nil {
		return 0, fmt.Errorf("BTRFS_IOC_INO_LOOKUP %s: %w", f.Name(), err)
	}
	return args.treeid, nil
}

// Info is what GET_SUBVOL_INFO tells about a subvolume.
type Info struct {
	ID, ParentID, Generation uint64
	Name                     string
	ReadOnly                 bool
	// UUID is unique for ever; an ID is reused once its subvolume is
	// deleted and the filesystem remounted.
	UUID string
	// CTransID is the transaction of the last change to the subvolume's
	// files: a read-only subvolume that nobody made writable keeps it.
	CTransID uint64
}

// GetInfo returns the info of the subvolume whose root is path, without a
// tree search (GET_SUBVOL_INFO, Linux 4.18+, unprivileged).
func GetInfo(path string) (Info, error) {
	f, err := openDir(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	if ok, err := isSubvolume(f); err != nil {
		return Info{}, err
	} else if !ok {
		return Info{}, fmt.Errorf("%s: %w", path, ErrNotSubvol)
	}
	var a subvolInfo
	if err := ioctl(int(f.Fd()), iocGetSubvolInfo, unsafe.Pointer(&a)); err != nil {
		return Info{}, fmt.Errorf("BTRFS_IOC_GET_SUBVOL_INFO %s: %w", path, err)
	}
	return Info{ID: a.treeid, ParentID: a.parentID, Generation: a.generation,
		Name: unix.ByteSliceToString(a.name[:]), ReadOnly: a.flags&rootRdonly != 0, UUID: fmt.Sprintf("%x", a.uuid), CTransID: a.ctransid}, nil
}

// SetReadOnly sets or clears the read-only flag of the subvolume at path.
// The kernel commits a transaction for it, so the change is durable when it
// returns. The mount must be writable (EROFS otherwise).
func SetReadOnly(path string, ro bool) error {
	f, err := openDir(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if ok, err := isSubvolume(f); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s: %w", path, ErrNotSubvol)
	}
	var flags uint64
	if err := ioctl(int(f.Fd()), iocSubvolGetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("BTRFS_IOC_SUBVOL_GETFLAGS %s: %w", path, err)
	}
	if ro {
		flags |= subvolRdonly
	} else {
		flags &^= subvolRdonly
	}
	if err := ioctl(int(f.Fd()), iocSubvolSetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("BTRFS_IOC_SUBVOL_SETFLAGS %s: %w", path, err)
	}
	return nil
}

// DefaultID returns the filesystem's default subvolume (what the kernel
// mounts without subvol=/subvolid=): one TREE_SEARCH of the root tree for its
// "default" directory item. Needs CAP_SYS_ADMIN.
func DefaultID(path string) (uint64, error) {
	f, err := openDir(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var a searchArgs
	a.key = searchKey{treeID: rootTreeID, minObjectID: rootTreeDirID, maxObjectID: rootTreeDirID,
		maxOffset: ^uint64(0), maxTransid: ^uint64(0), minType: dirItemKey, maxType: dirItemKey, nrItems: 16}
	if err := ioctl(int(f.Fd()), iocTreeSearch, unsafe.Pointer(&a)); err != nil {
		return 0, fmt.Errorf("BTRFS_IOC_TREE_SEARCH %s: %w", path, err)
	}
	if id := defaultFromSearch(a.buf[:], a.key.nrItems); id != 0 {
		return id, nil
	}
	return fsTreeObjectID, nil // no "default" item: the top level
}

// MountedIDs returns the subvolumes that are mounted (as the root of a mount,
// a bind, or the lower layer of an overlay), by ID, each with a mount point.
// The kernel lets a mounted subvolume be deleted, and the running root then
// loses its files; every delete here checks this first.
func MountedIDs() (map[uint64]string, error) {
	ms, err := mounts.Read()
	if err != nil {
		return nil, err
	}
	out := map[uint64]string{}
	for _, m := range ms {
		if m.FSType != "btrfs" {
			continue
		}
		if id, err := ID(m.MountPoint); err == nil {
			out[id] = m.MountPoint
		}
	}
	return out, nil
}

// Delete deletes the entry at path: a subvolume by its ID (SNAP_DESTROY_V2,
// no walk of its tree), then syncfs, because a subvolume deletion is not
// durable until the next commit; anything else (a plain directory left by a
// crash, a file) with os.RemoveAll. A missing path is not an error. A
// mounted subvolume is refused (ErrInUse).
func Delete(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return os.Remove(path)
	}
	f, err := openDir(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sub, err := isSubvolume(f)
	if err != nil {
		return err
	}
	if !sub {
		return os.RemoveAll(path)
	}
	id, err := fdID(f)
	if err != nil {
		return err
	}
	if busy, err := InUse(id); err != nil {
		return err
	} else if busy != "" {
		return fmt.Errorf("delete %s: %w: subvolume %d is mounted at %s (the running root?)", path, ErrInUse, id, busy)
	}
	parent, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := destroy(parent, f, id); err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	// Why: a deleted subvolume comes back after a power cut until the
	// transaction commits; the protocol's step is done only when it is gone.
	if err := unix.Syncfs(int(parent.Fd())); err != nil {
		return fmt.Errorf("syncfs after deleting %s: %w", path, err)
	}
	return nil
}

// InUse returns a mount point of subvolume id, or "" when it is not mounted.
func InUse(id uint64) (string, error) {
	ids, err := MountedIDs()
	if err != nil {
		return "", err
	}
	return ids[id], nil
}

// PendingDeletes lists the deleted subvolumes whose space the filesystem of
// path has not freed yet: btrfs frees it in the background (its cleaner
// thread), and only while the filesystem is mounted writable.
func PendingDeletes(path string) ([]uint64, error) {
	f, err := openDir(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return pendingDeletes(f)
}

func pendingDeletes(f *os.File) ([]uint64, error) {
	return rootTreeOffsets(f, orphanObjectID, orphanItemKey)
}

// rootTreeOffsets searches the root tree (TREE_SEARCH, CAP_SYS_ADMIN)
// through any directory f of the filesystem for the items (objectid, typ,
// *) and returns their offsets: for orphan items the IDs of deleted
// subvolumes, for ROOT_REF items the IDs of child subvolumes. One search
// returns at most the items that fit its buffer (some 130 of these): more
// than any store has.
func rootTreeOffsets(f *os.File, objectid uint64, typ uint32) ([]uint64, error) {
	var a searchArgs
	a.key = searchKey{treeID: rootTreeID, minObjectID: objectid, maxObjectID: objectid,
		maxOffset: ^uint64(0), maxTransid: ^uint64(0), minType: typ, maxType: typ, nrItems: 256}
	if err := ioctl(int(f.Fd()), iocTreeSearch, unsafe.Pointer(&a)); err != nil {
		return nil, fmt.Errorf("BTRFS_IOC_TREE_SEARCH %s: %w", f.Name(), err)
	}
	return offsetsFromSearch(a.buf[:], a.key.nrItems, typ), nil
}

// WaitCleaned waits, up to timeout, until the filesystem of path has freed
// the space of every deleted subvolume, and commits that. Why BTRFS_IOC_SYNC
// and not syncfs: besides the commit it wakes the transaction thread, which
// wakes the cleaner; otherwise the cleaner waits for the next periodic
// commit (30 s). It returns how many were pending at the start. The
// filesystem must be mounted writable for this to end.
func WaitCleaned(path string, timeout time.Duration) (int, error) {
	f, err := openDir(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	first, err := pendingDeletes(f)
	if err != nil || len(first) == 0 {
		return 0, err
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := ioctl(int(f.Fd()), iocSync, nil); err != nil {
			return len(first), fmt.Errorf("BTRFS_IOC_SYNC %s: %w", path, err)
		}
		left, err := pendingDeletes(f)
		if err != nil {
			return len(first), err
		}
		if len(left) == 0 {
			// The cleaner's last changes (the freed extents) are durable
			// and counted only after one more commit.
			if err := ioctl(int(f.Fd()), iocSync, nil); err != nil {
				return len(first), fmt.Errorf("BTRFS_IOC_SYNC %s: %w", path, err)
			}
			return len(first), nil
		}
		if time.Now().After(deadline) {
			return len(first), fmt.Errorf("btrfs is still freeing %d deleted subvolumes of %s after %s; the space comes back in the background", len(left), path, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// destroy deletes subvolume id (SNAP_DESTROY_V2 by ID, through parent, the
// directory that holds it) and, when it holds subvolumes of its own (which
// a snapshot does not contain, and the kernel will not delete it with),
// those first, through in, the subvolume's own directory.
func destroy(parent, in *os.File, id uint64) error {
	args := volArgsV2{flags: subvolSpecByID, subvolid: id}
	err := ioctl(int(parent.Fd()), iocSnapDestroyV2, unsafe.Pointer(&args))
	if !errors.Is(err, unix.ENOTEMPTY) {
		if err != nil {
			return fmt.Errorf("BTRFS_IOC_SNAP_DESTROY_V2 (subvolume %d): %w", id, err)
		}
		return nil
	}
	children, cerr := childSubvolumes(in, id)
	if cerr != nil || len(children) == 0 {
		return fmt.Errorf("BTRFS_IOC_SNAP_DESTROY_V2 (subvolume %d): %w", id, errors.Join(err, cerr))
	}
	for _, c := range children {
		if err := destroy(in, in, c); err != nil {
			return err
		}
	}
	args = volArgsV2{flags: subvolSpecByID, subvolid: id}
	if err := ioctl(int(parent.Fd()), iocSnapDestroyV2, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("BTRFS_IOC_SNAP_DESTROY_V2 (subvolume %d): %w", id, err)
	}
	return nil
}

// childSubvolumes lists the subvolumes directly inside subvolume id (its
// ROOT_REF items in the root tree), through any directory f of the
// filesystem. Needs CAP_SYS_ADMIN.
func childSubvolumes(f *os.File, id uint64) ([]uint64, error) {
	return rootTreeOffsets(f, id, rootRefKey)
}

// ChildSubvolumes lists the subvolumes directly inside the subvolume at path.
func ChildSubvolumes(path string) ([]uint64, error) {
	f, err := openDir(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	id, err := fdID(f)
	if err != nil {
		return nil, err
	}
	return childSubvolumes(f, id)
}

// FSID is the UUID of the btrfs filesystem that holds path: subvolume IDs
// are only unique within one filesystem.
func FSID(path string) ([16]byte, error) {
	f, err := openDir(path)
	if err != nil {
		return [16]byte{}, err
	}
	defer f.Close()
	var a fsInfoArgs
	if err := ioctl(int(f.Fd()), iocFsInfo, unsafe.Pointer(&a)); err != nil {
		return [16]byte{}, fmt.Errorf("BTRFS_IOC_FS_INFO %s: %w", path, err)
	}
	return a.fsid, nil
}
