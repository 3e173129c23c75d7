// Package dm owns device-mapper devices: it creates, loads, resumes,
// queries and removes them with the kernel's ioctls on /dev/mapper/control
// (golang.org/x/sys/unix, no libdevmapper), and sets up the dm-verity device
// a root image is mounted from (verity_linux.go).
//
// The ioctl buffers (a struct dm_ioctl header, then the command's data) are
// built and parsed by the pure functions of this file, tested without root;
// the syscalls are in *_linux.go.
package dm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizes of the kernel's structs (include/uapi/linux/dm-ioctl.h); the tests
// check unix's Go types against them.
const (
	sizeofIoctl      = 312 // struct dm_ioctl
	sizeofTargetSpec = 40  // struct dm_target_spec
	sizeofVersions   = 16  // struct dm_target_versions, without the name
)

// The ioctl interface version we speak: 4.x, as every kernel since 2.6.
var ioctlVersion = [3]uint32{4, 0, 0}

// Target is one line of a device-mapper table.
type Target struct {
	Start, Length uint64 // in 512-byte sectors
	Type          string // "verity", "linear", ...
	Params        string
}

// TargetStatus is one target's line of DM_TABLE_STATUS.
type TargetStatus struct {
	Start, Length uint64
	Type          string
	Status        string // e.g. "V" (verified) or "C" (corruption seen) for verity
}

// ErrNameTooLong is returned for a device name the kernel cannot hold.
var ErrNameTooLong = errors.New("device-mapper name too long")

// buffer is an ioctl argument: a dm_ioctl header followed by data, in
// memory aligned for the header.
type buffer []byte

// newBuffer returns a zeroed buffer of size bytes (at least the header),
// aligned to 8, with the header's version, sizes, name and flags set.
func newBuffer(size int, name string, flags uint32) (buffer, error) {
	if len(name) >= unix.DM_NAME_LEN {
		return nil, fmt.Errorf("%w: %q (at most %d bytes)", ErrNameTooLong, name, unix.DM_NAME_LEN-1)
	}
	size = max(size, sizeofIoctl)
	words := make([]uint64, (size+7)/8)
	b := buffer(unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8))
	h := b.header()
	h.Version = ioctlVersion
	h.Data_size = uint32(len(b))
	h.Data_start = sizeofIoctl
	h.Flags = flags
	copy(h.Name[:], name)
	return b, nil
}

func (b buffer) header() *unix.DmIoctl { return (*unix.DmIoctl)(unsafe.Pointer(&b[0])) }

// data is the part after the header that the kernel filled in.
func (b buffer) data() []byte {
	h := b.header()
	end := min(int(h.Data_size), len(b))
	if int(h.Data_start) > end {
		return nil
	}
	return b[h.Data_start:end]
}

// tableLoad builds the DM_TABLE_LOAD argument: each target is a
// dm_target_spec followed by its NUL-terminated parameters, padded to 8
// bytes; next is the offset from one spec to the next.
func tableLoad(name string, flags uint32, targets []Target) (buffer, error) {
	var data []byte
	for _, t := range targets {
		if len(t.Type) >= unix.DM_MAX_TYPE_NAME {
			return nil, fmt.Errorf("target type %q is too long", t.Type)
		}
		n := (sizeofTargetSpec + len(t.Params) + 1 + 7) &^ 7
		spec := make([]byte, n)
		le := binary.LittleEndian
		le.PutUint64(spec[0:], t.Start)
		le.PutUint64(spec[8:], t.Length)
		le.PutUint32(spec[20:], uint32(n)) // next
		copy(spec[24:24+unix.DM_MAX_TYPE_NAME], t.Type)
		copy(spec[sizeofTargetSpec:], t.Params)
		data = append(data, spec...)
	}
	b, err := newBuffer(sizeofIoctl+len(data), name, flags)
	if err != nil {
		return nil, err
	}
	b.header().Target_count = uint32(len(targets))
	copy(b[sizeofIoctl:], data)
	return b, nil
}

// parseStatus reads DM_TABLE_STATUS's data: count target specs, each
// followed by its NUL-terminated status, next being the offset from the
// start of the data to the next spec.
func parseStatus(data []byte, count uint32) ([]TargetStatus, error) {
	var out []TargetStatus
	for i, off := uint32(0), 0; i < count; i++ {
		if off+sizeofTargetSpec > len(data) {
			return nil, fmt.Errorf("status of target %d lies outside the %d bytes returned", i, len(data))
		}
		s := data[off:]
		le := binary.LittleEndian
		out = append(out, TargetStatus{Start: le.Uint64(s[0:]), Length: le.Uint64(s[8:]),
			Type: cstring(s[24 : 24+unix.DM_MAX_TYPE_NAME]), Status: cstring(s[sizeofTargetSpec:])})
		next := int(le.Uint32(s[20:]))
		if next <= off && i+1 < count {
			return nil, fmt.Errorf("status of target %d: next offset %d does not advance", i, next)
		}
		off = next
	}
	return out, nil
}

// parseVersions reads DM_LIST_VERSIONS's data: a chain of
// dm_target_versions, each with its name, next being the offset from one
// to the next (0 ends it).
func parseVersions(data []byte) (map[string][3]uint32, error) {
	out := map[string][3]uint32{}
	for off := 0; off+sizeofVersions <= len(data); {
		le := binary.LittleEndian
		next := int(le.Uint32(data[off:]))
		v := [3]uint32{le.Uint32(data[off+4:]), le.Uint32(data[off+8:]), le.Uint32(data[off+12:])}
		out[cstring(data[off+sizeofVersions:])] = v
		if next == 0 {
			break
		}
		if next < sizeofVersions {
			return nil, fmt.Errorf("target list: next offset %d at %d is too small", next, off)
		}
		off += next
	}
	return out, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
