// Package blockdev owns what the boot configuration needs to know about a
// partition: the PARTUUID the kernel's root=PARTUUID= matches, and the
// filesystem on it (for rootfstype=). The decisions are pure functions over
// the bytes of a partition table or a superblock; Resolve reads them from a
// device, finding the whole disk and the partition number through sysfs.
//
// The kernel's PARTUUID (block/partitions/msdos.c and efi.c):
//   - MBR: the disk signature (4 bytes at offset 440, little-endian) as
//     8 hex digits, a dash, the partition number as 2 hex digits:
//     6c586e13-03, as Raspberry Pi OS writes it in cmdline.txt;
//   - GPT: the partition entry's unique GUID, in the mixed-endian text
//     form of every GUID.
package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrNoPartUUID means the disk's partition table gives the partition no
// PARTUUID: no table, an MBR without a signature, or no such partition.
var ErrNoPartUUID = errors.New("no PARTUUID")

const sector = 512

// PartUUID returns the PARTUUID of partition number part (1-based) of the
// disk whose first bytes are head. head must hold the MBR and, for GPT,
// the header (LBA 1) and the partition entries (gpt at their offset): give
// it the first 64 KiB + 512 B, or the entries' sectors via entries.
func PartUUID(head []byte, part int, entries func(off int64, n int) ([]byte, error)) (string, error) {
	if part < 1 {
		return "", fmt.Errorf("%w: partition number %d", ErrNoPartUUID, part)
	}
	if len(head) < 2*sector {
		return "", fmt.Errorf("%w: %d bytes are too few for a partition table", ErrNoPartUUID, len(head))
	}
	mbr := head[:sector]
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return "", fmt.Errorf("%w: no partition table (no MBR boot signature)", ErrNoPartUUID)
	}
	if isProtective(mbr) {
		return gptPartUUID(head[sector:2*sector], part, entries)
	}
	return mbrPartUUID(mbr, part)
}

// isProtective says the MBR only protects a GPT: one of its entries has
// type 0xEE.
func isProtective(mbr []byte) bool {
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return true
		}
	}
	return false
}

func mbrPartUUID(mbr []byte, part int) (string, error) {
	sig := binary.LittleEndian.Uint32(mbr[440:444])
	if sig == 0 {
		return "", fmt.Errorf("%w: the MBR has no disk signature (fdisk's 'x' then 'i' sets one)", ErrNoPartUUID)
	}
	if part <= 4 {
		e := mbr[446+16*(part-1):]
		if e[4] == 0 {
			return "", fmt.Errorf("%w: the MBR has no partition %d", ErrNoPartUUID, part)
		}
	}
	// Logical partitions (5 and up) are numbered by the kernel in the
	// order of the extended chain; their PARTUUID has the same form.
	return fmt.Sprintf("%08x-%02x", sig, part), nil
}

func gptPartUUID(hdr []byte, part int, entries func(off int64, n int) ([]byte, error)) (string, error) {
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return "", fmt.Errorf("%w: a protective MBR but no GPT header", ErrNoPartUUID)
	}
	lba := binary.LittleEndian.Uint64(hdr[72:80])
	count := binary.LittleEndian.Uint32(hdr[80:84])
	size := binary.LittleEndian.Uint32(hdr[84:88])
	if size < 128 || size > 4096 || uint32(part) > count {
		return "", fmt.Errorf("%w: GPT has %d entries of %d bytes; no partition %d", ErrNoPartUUID, count, size, part)
	}
	if lba == 0 || lba > 1<<40 {
		return "", fmt.Errorf("%w: GPT entries at LBA %d", ErrNoPartUUID, lba)
	}
	off := int64(lba)*sector + int64(part-1)*int64(size)
	e, err := entries(off, int(size))
	if err != nil {
		return "", fmt.Errorf("read GPT entry %d: %w", part, err)
	}
	if len(e) < 32 {
		return "", fmt.Errorf("%w: short GPT entry", ErrNoPartUUID)
	}
	if allZero(e[:16]) {
		return "", fmt.Errorf("%w: GPT entry %d is unused", ErrNoPartUUID, part)
	}
	return guid(e[16:32]), nil
}

// guid formats a GUID as text: the first three fields are little-endian.
func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FSType names the filesystem whose first 68 KiB are head, as rootfstype=
// wants it: "ext4" (ext2/3/4 all mount as ext4), "btrfs", "vfat", or "".
func FSType(head []byte) string {
	switch {
	case len(head) >= 0x10040+8 && string(head[0x10040:0x10048]) == "_BHRfS_M":
		return "btrfs"
	case len(head) >= 1024+58 && binary.LittleEndian.Uint16(head[1024+56:]) == 0xEF53:
		return "ext4"
	case len(head) >= 90 && (strings.HasPrefix(string(head[82:90]), "FAT32") || strings.HasPrefix(string(head[54:62]), "FAT")):
		return "vfat"
	}
	return ""
}
