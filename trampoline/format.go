package trampoline

import "github.com/overlayupd/overlayupd/internal/mounts"

// Format is what a kind of store entry (a squashfs image file, a btrfs
// subvolume) gives the boot path and the commands, beyond the renames of its
// Backend. It is small on purpose, as containerd's Snapshotter is: the
// protocol never looks inside an entry, and the mount of one is returned as
// data for the boot plan to print, carry out and undo.
type Format interface {
	// Name is the store marker's format= value: "squashfs", "btrfs".
	Name() string
	// Suffix is the protocol names' suffix: ".sqsh" for images, "" for subvolumes.
	Suffix() string
	// Backend is the slot directory slotDir holding entries of this format.
	Backend(slotDir string) Backend
	// Lower is how to mount entry read-only as the overlay's lower layer.
	Lower(slotDir, entry string) mounts.Spec
	// Booted names the entry the running system booted, from the mount of
	// its lower layer (/overlay/robase): "" when it is none of this store's.
	// Names change on commit, so a format identifies the entry by what the
	// kernel tracks (the loop device's backing file, a subvolume ID).
	Booted(slotDir string, robase mounts.Mount) (string, error)
	// Digest is a content digest of entry for status ("sha256:…"), or ""
	// when the format has none cheaper than reading the whole tree.
	Digest(slotDir, entry string) (string, error)
}

// EntrySizer is a Format whose entry files hold more than the image (the
// squashfs format appends a dm-verity tree): Status reports EntrySize, the
// image's own size, instead of the file's.
type EntrySizer interface {
	EntrySize(slotDir, entry string) (int64, error)
}
