package loop

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLayout checks the loop ioctls' argument types, as x/sys/unix defines
// them for this architecture, against include/uapi/linux/loop.h: sizes and
// the offsets of the fields configure sets. The kernel's structs use only
// fixed-width fields, so the layout is the same on every architecture; a
// Go type that differs (an alignment of 32-bit ARM, a field that became
// an int) fails here, under make test-arm-unit on arm64, armhf and armv6.
func TestLayout(t *testing.T) {
	var info unix.LoopInfo64
	var cfg unix.LoopConfig
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct loop_info64)", unsafe.Sizeof(info), 232},
		{"loop_info64.lo_offset", unsafe.Offsetof(info.Offset), 24},
		{"loop_info64.lo_sizelimit", unsafe.Offsetof(info.Sizelimit), 32},
		{"loop_info64.lo_number", unsafe.Offsetof(info.Number), 40},
		{"loop_info64.lo_flags", unsafe.Offsetof(info.Flags), 52},
		{"loop_info64.lo_file_name", unsafe.Offsetof(info.File_name), 56},
		{"loop_info64.lo_crypt_name", unsafe.Offsetof(info.Crypt_name), 120},
		{"loop_info64.lo_init", unsafe.Offsetof(info.Init), 216},
		{"sizeof(struct loop_config)", unsafe.Sizeof(cfg), 304},
		{"loop_config.fd", unsafe.Offsetof(cfg.Fd), 0},
		{"loop_config.block_size", unsafe.Offsetof(cfg.Size), 4},
		{"loop_config.info", unsafe.Offsetof(cfg.Info), 8},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// The loop ioctls are plain numbers (no _IOC size): the same everywhere.
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"LOOP_SET_FD", unix.LOOP_SET_FD, 0x4c00},
		{"LOOP_CLR_FD", unix.LOOP_CLR_FD, 0x4c01},
		{"LOOP_SET_STATUS64", unix.LOOP_SET_STATUS64, 0x4c04},
		{"LOOP_CONFIGURE", unix.LOOP_CONFIGURE, 0x4c0a},
		{"LOOP_CTL_GET_FREE", unix.LOOP_CTL_GET_FREE, 0x4c82},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if len(info.File_name) != 64 {
		t.Errorf("lo_file_name holds %d bytes, want 64 (LO_NAME_SIZE)", len(info.File_name))
	}
}
