// Package squash owns squashfs root images: it validates an image before it may be
// staged, copies it into the store (hashing and fsyncing while it copies), and
// is the squashfs store's trampoline.Format (format.go): entries are *.sqsh
// files, mounted as data ({squashfs, image, [ro, loop]}: the boot executor
// attaches the loop device), the booted one found by its loop device's
// backing file, and its digest is the file's sha256.
//
// Decisions (pure functions, tested without root) live in superblock.go,
// resolve.go and errors.go; the syscalls live in *_linux.go files.
//
// Validation has two paths:
//
//   - gzip, xz and zstd images are read in-process with
//     github.com/diskfs/go-diskfs by the subpackage squash/inspect
//     (inspect.Validate): superblock, inode and directory tables, the whole
//     directory tree, and the data of the file /sbin/init resolves to. It is a
//     package of its own so that the PID-1 binary, which imports this package
//     for Format, links no decompressors.
//   - lz4 and lzo images cannot be checked that way: go-diskfs v1.9.4 treats lz4
//     blocks as lz4 frames (squashfs stores raw lz4 blocks), so it cannot even read
//     the root inode, and its lzo reader fails with "output overrun" on ordinary
//     data blocks. For those inspect.Validate falls back to ValidateByMount: a real
//     read-only loop mount in a private mount namespace that lives on one locked
//     OS thread and dies with it. Without root (or without loop/squashfs support)
//     such images are refused with ErrUnsupportedCompression and a message that
//     says how to rebuild them.
//   - lzma (id 2) images are always refused: go-diskfs reads them, but the Linux
//     kernel cannot mount them, so the device would not boot.
//
// Staging speed: a regular file is copied by the kernel (copy_file_range)
// while a goroutine reads the same bytes from the page cache; a stream
// (stdin) is read into memory in 1 MiB chunks. Either way every hash (the
// sha256, the dm-verity tree, a signature's) takes each chunk on a goroutine
// of its own (lanes), in order. A writeback goroutine starts the disk on
// every 8 MiB as it is written (sync_file_range), waits for what is 128 MiB
// behind and drops it from the page cache (FADV_DONTNEED), and once the copy
// is over flushes the bulk (fdatasync) while the hashes finish, so the final
// fsync has little left; its errors are kept and fail the stage, since the
// kernel reports a writeback error once per open file. With the size known,
// the tree's level 0 is written into the staged file, at its place after
// the image, as it fills, so memory does not grow with the image. Its floor is the two
// SHA-256 passes on two cores (about 1.5 GB/s each per core with SHA-NI on
// the build VM); on a store slower than that (SD card, eMMC) the disk is the
// limit, as it is for cp + sync.
//
// A signature's hash (Options.Hash, BLAKE2b-512 for minisign) is computed on
// the staged bytes in the same pass, on a goroutine of its own beside the
// sha256: of the buffer that is written, for a file as for a stream (a
// signed apply does not use copy_file_range), never a second read of the
// source. BLAKE2b in
// Go runs at about 0.5-0.9 GB/s per core: a store slower than that does not
// notice it; on a fast disk it is the limit.
//
// Validation also reads what the root says about itself (Meta: its
// os-release, /etc/overlayupd/version, /etc/overlayupd/trusted.d/*.pub) on
// its way, from the image it validates; ReadMeta and TreeMeta read the same
// of a committed image or a root tree without a full check.
package squash
