package squash

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/trampoline"
)

// ImageSuffix is the suffix of the squashfs store's entries: root.sqsh, ...
const ImageSuffix = ".sqsh"

// Format is the squashfs store's trampoline.Format: entries are image files,
// loop-mounted read-only.
type Format struct{}

var _ trampoline.Format = Format{}

// Name implements trampoline.Format.
func (Format) Name() string { return "squashfs" }

// Suffix implements trampoline.Format.
func (Format) Suffix() string { return ImageSuffix }

// Backend implements trampoline.Format: image files, deleted by unlink.
func (Format) Backend(slotDir string) trampoline.Backend {
	return trampoline.NewDirBackend(slotDir, ImageSuffix, nil)
}

var _ trampoline.EntrySizer = Format{}

// EntrySize implements trampoline.EntrySizer: the image's own size, without
// its dm-verity tree (one read of the entry's last block). Status calls
// it; the boot path, which lists entries too, does not pay for it.
func (Format) EntrySize(slotDir, entry string) (int64, error) {
	return ImageSize(filepath.Join(slotDir, entry))
}

// Lower implements trampoline.Format: the image, loop-mounted read-only,
// through dm-verity when it carries a tree and the configuration and the
// kernel allow it (the "verity" option: see the overlay executor).
func (Format) Lower(slotDir, entry string) mounts.Spec {
	return mounts.Spec{Type: "squashfs", Source: filepath.Join(slotDir, entry), Options: []string{"ro", "loop", "verity"}}
}

// SysBlock is where loop devices publish their backing files; tests move it.
var SysBlock = "/sys/block"

// Booted implements trampoline.Format: the file behind the loop device
// mounted at robase, directly or under a dm-verity device. The kernel
// tracks renames, so after a commit it is the entry's new name. With a
// slotDir, the name counts only when slotDir holds that very file (its
// inode is the loop device's backing inode): a system booted from its own
// root.sqsh has not booted another store's root.sqsh (apply --store on an
// SD card of another device). Where the loop device cannot say (no
// /dev/loopN), the name is trusted, as before the check.
func (Format) Booted(slotDir string, robase mounts.Mount) (string, error) {
	dev := filepath.Base(robase.Source)
	if strings.HasPrefix(robase.Source, "/dev/dm-") {
		dev = loopUnder(dev)
	} else if !strings.HasPrefix(robase.Source, "/dev/loop") {
		return "", nil
	}
	if dev == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(SysBlock, dev, "loop", "backing_file"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("backing file of %s: %w", robase.Source, err)
	}
	name := filepath.Base(strings.TrimSpace(string(b)))
	if slotDir == "" {
		return name, nil
	}
	ino, err := loopBackingInode(dev)
	if err != nil {
		return name, nil // cannot tell: the name, as before
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(slotDir, name), &st); errors.Is(err, unix.ENOENT) || (err == nil && st.Ino != ino) {
		return "", nil // another file of that name: not booted from this store
	}
	return name, nil
}

// loopBackingInode is the inode number of the file behind the loop device
// dev (loopN), from the loop driver; a variable for tests. Why the inode
// alone, not with the device: btrfs reports a subvolume's device in
// stat(2), the loop driver the filesystem's.
var loopBackingInode = func(dev string) (uint64, error) {
	f, err := os.OpenFile(filepath.Join("/dev", dev), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		return 0, err
	}
	return info.Inode, nil
}

// loopUnder names the loop device under the device-mapper device dev
// (dm-N), from its slaves in sysfs: "" when there is none.
func loopUnder(dev string) string {
	ents, err := os.ReadDir(filepath.Join(SysBlock, dev, "slaves"))
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "loop") {
			return e.Name()
		}
	}
	return ""
}

var _ trampoline.EntryIdentifier = Format{}

// EntryID implements trampoline.EntryIdentifier: the image file's inode,
// size and modification time, which the protocol's renames keep (the trust
// records follow an entry by the same).
func (Format) EntryID(slotDir, entry string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(slotDir, entry), &st); err != nil {
		return "", fmt.Errorf("identity of %s: %w", entry, err)
	}
	u := func(v int64) string { return strconv.FormatInt(v, 10) }
	return "image:" + strconv.FormatUint(st.Ino, 10) + ":" + u(st.Size) + ":" + u(int64(st.Mtim.Sec)) + "." + u(int64(st.Mtim.Nsec)), nil
}

// Digest implements trampoline.Format: the image's sha256, in hex: of the
// bytes that were applied, without the dm-verity tree, so that it matches
// sha256sum of the file the user applied.
func (Format) Digest(slotDir, entry string) (string, error) {
	s, err := ImageSum(filepath.Join(slotDir, entry))
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(s[:]), nil
}
