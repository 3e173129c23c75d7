// Package verity owns the dm-verity hash tree of a root image and the
// trailer that carries it inside the image file: how the tree is computed
// (in Go, byte for byte what `veritysetup format --no-superblock` makes),
// where it lies in the store entry, and the kernel table line that maps it.
// It makes no syscalls: the device-mapper ioctls are internal/dm's.
//
// # The tree
//
// The kernel's format, version 1 (Documentation/admin-guide/device-mapper/
// verity.rst): sha256, 4096-byte data and hash blocks, so 128 digests per
// hash block. Each digest is sha256(salt || block) (version 1 prepends the
// salt). Level 0 holds the digests of the data blocks, each higher level the
// digests of the hash blocks below it, up to a level of one block, whose
// digest is the root hash; the last block of each level is zero-padded. The
// levels are stored top level first. One data block has no hash block at all:
// its digest is the root hash, as the kernel and veritysetup have it.
//
// The salt is fixed (DefaultSalt, the sha256 of a constant string), so the
// root hash is a pure function of the image bytes: a signature over the
// image's bytes covers its root hash too, and anyone can recompute it.
//
// # Where the tree lives: a trailer in the image file
//
// A store entry must be renamed and removed as one (the slot protocol's
// single rename), so the tree is appended to the image file itself:
//
//	[0, ImageSize)             the squashfs image as applied (its sha256 is the image's)
//	[ImageSize, HashOffset)    zeros up to the next 4 KiB boundary
//	[HashOffset, +HashSize)    the hash tree, top level first
//	[last 4096 bytes]          the trailer: magic, version, sizes, root hash, salt, checksum
//
// The verity data area is [0, HashOffset): the image and its zero padding.
// The squashfs superblock's bytes_used bounds what the filesystem reads, so
// the image still mounts from the whole file (no verity) or from the
// dm-verity device, which maps the data area only. The trailer sits at a
// fixed place, the file's last block, so a reader finds it with one pread;
// its own sha256 tells a damaged trailer from an image that has none.
//
// Why not a file beside the image (root.sqsh.verity): every rename of the
// protocol would become two, and a crash between them would pair an image
// with another image's tree. Why not veritysetup's superblock: it describes
// a separate hash device, and it has no image size or checksum of itself.
//
// What this protects: a damaged block (a worn SD card, a bad write) is an
// I/O error at every read, never wrong bytes. What it does not: the root
// hash is read from the same store, so someone who can rewrite the store
// can rewrite image, tree and trailer together; only a root hash checked
// against a signature at boot would stop that.
package verity
