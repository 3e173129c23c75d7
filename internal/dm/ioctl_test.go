package dm

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLayout checks the Go types against include/uapi/linux/dm-ioctl.h:
// sizes and the offsets of the fields we set or read.
func TestLayout(t *testing.T) {
	var h unix.DmIoctl
	var s unix.DmTargetSpec
	var v unix.DmTargetVersions
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct dm_ioctl)", unsafe.Sizeof(h), sizeofIoctl},
		{"dm_ioctl.data_size", unsafe.Offsetof(h.Data_size), 12},
		{"dm_ioctl.data_start", unsafe.Offsetof(h.Data_start), 16},
		{"dm_ioctl.target_count", unsafe.Offsetof(h.Target_count), 20},
		{"dm_ioctl.flags", unsafe.Offsetof(h.Flags), 28},
		{"dm_ioctl.dev", unsafe.Offsetof(h.Dev), 40},
		{"dm_ioctl.name", unsafe.Offsetof(h.Name), 48},
		{"dm_ioctl.uuid", unsafe.Offsetof(h.Uuid), 48 + 128},
		{"sizeof(struct dm_target_spec)", unsafe.Sizeof(s), sizeofTargetSpec},
		{"dm_target_spec.next", unsafe.Offsetof(s.Next), 20},
		{"dm_target_spec.target_type", unsafe.Offsetof(s.Target_type), 24},
		{"sizeof(struct dm_target_versions)", unsafe.Sizeof(v), sizeofVersions},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// _IOWR(DM_IOCTL, nr, struct dm_ioctl): direction 3, size, type 0xfd.
	iowr := func(nr uintptr) uintptr { return 3<<30 | sizeofIoctl<<16 | 0xfd<<8 | nr }
	for nr, req := range map[uintptr]uintptr{3: unix.DM_DEV_CREATE, 4: unix.DM_DEV_REMOVE, 6: unix.DM_DEV_SUSPEND,
		9: unix.DM_TABLE_LOAD, 12: unix.DM_TABLE_STATUS, 13: unix.DM_LIST_VERSIONS} {
		if req != iowr(nr) {
			t.Errorf("ioctl %d = %#x, want %#x", nr, req, iowr(nr))
		}
	}
}

func TestNewBuffer(t *testing.T) {
	b, err := newBuffer(0, "overlayupd-root.sqsh", unix.DM_READONLY_FLAG)
	if err != nil {
		t.Fatal(err)
	}
	h := b.header()
	if len(b) != sizeofIoctl || h.Data_size != sizeofIoctl || h.Data_start != sizeofIoctl ||
		h.Version != [3]uint32{4, 0, 0} || h.Flags != unix.DM_READONLY_FLAG || cstring(h.Name[:]) != "overlayupd-root.sqsh" {
		t.Errorf("header %+v", *h)
	}
	if uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		t.Error("buffer not 8-byte aligned")
	}
	if _, err := newBuffer(0, strings.Repeat("x", 128), 0); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("128-byte name: %v, want ErrNameTooLong", err)
	}
}

func TestTableLoad(t *testing.T) {
	params := "1 7:0 7:0 4096 4096 130 130 sha256 " + strings.Repeat("ab", 32) + " -"
	b, err := tableLoad("v", unix.DM_READONLY_FLAG, []Target{{Start: 0, Length: 1040, Type: "verity", Params: params}})
	if err != nil {
		t.Fatal(err)
	}
	h := b.header()
	specLen := (sizeofTargetSpec + len(params) + 1 + 7) &^ 7
	if h.Target_count != 1 || int(h.Data_size) != len(b) || len(b) != sizeofIoctl+specLen {
		t.Fatalf("count %d, data_size %d, len %d; want 1, %d", h.Target_count, h.Data_size, len(b), sizeofIoctl+specLen)
	}
	spec := b[sizeofIoctl:]
	le := binary.LittleEndian
	if le.Uint64(spec[0:]) != 0 || le.Uint64(spec[8:]) != 1040 || le.Uint32(spec[20:]) != uint32(specLen) ||
		cstring(spec[24:40]) != "verity" || cstring(spec[40:]) != params || spec[40+len(params)] != 0 {
		t.Errorf("target spec %q", spec)
	}
	if _, err := tableLoad("v", 0, []Target{{Type: strings.Repeat("t", 16)}}); err == nil {
		t.Error("a 16-byte target type was accepted")
	}
}

// spec encodes one dm_target_spec with its string, as the kernel returns it.
func spec(start, length uint64, typ, str string, next uint32) []byte {
	b := make([]byte, (sizeofTargetSpec+len(str)+1+7)&^7)
	le := binary.LittleEndian
	le.PutUint64(b[0:], start)
	le.PutUint64(b[8:], length)
	le.PutUint32(b[20:], next)
	copy(b[24:40], typ)
	copy(b[40:], str)
	return b
}

func TestParseStatus(t *testing.T) {
	one := spec(0, 1040, "verity", "C", 48)
	got, err := parseStatus(one, 1)
	if err != nil || len(got) != 1 || got[0] != (TargetStatus{0, 1040, "verity", "C"}) {
		t.Errorf("one target: %+v, %v", got, err)
	}
	two := append(spec(0, 8, "linear", "", 48), spec(8, 8, "verity", "V", 96)...)
	got, err = parseStatus(two, 2)
	if err != nil || len(got) != 2 || got[1] != (TargetStatus{8, 8, "verity", "V"}) || got[0].Type != "linear" {
		t.Errorf("two targets: %+v, %v", got, err)
	}
	for name, c := range map[string]struct {
		data  []byte
		count uint32
	}{
		"short":         {one[:20], 1},
		"count too big": {one, 2},
		"loops":         {append(spec(0, 8, "linear", "", 0), spec(8, 8, "verity", "V", 0)...), 3},
	} {
		if _, err := parseStatus(c.data, c.count); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseVersions(t *testing.T) {
	entry := func(name string, v [3]uint32, last bool) []byte {
		b := make([]byte, (sizeofVersions+len(name)+1+7)&^7)
		le := binary.LittleEndian
		if !last {
			le.PutUint32(b, uint32(len(b)))
		}
		for i, x := range v {
			le.PutUint32(b[4+4*i:], x)
		}
		copy(b[16:], name)
		return b
	}
	data := append(append(entry("striped", [3]uint32{1, 6, 0}, false), entry("linear", [3]uint32{1, 4, 0}, false)...),
		entry("verity", [3]uint32{1, 8, 1}, true)...)
	got, err := parseVersions(data)
	if err != nil || len(got) != 3 || got["verity"] != [3]uint32{1, 8, 1} || got["linear"] != [3]uint32{1, 4, 0} {
		t.Errorf("parseVersions = %v, %v", got, err)
	}
	bad := entry("x", [3]uint32{}, false)
	binary.LittleEndian.PutUint32(bad, 4)
	if _, err := parseVersions(bad); err == nil {
		t.Error("a next offset inside the entry was accepted")
	}
	if got, err := parseVersions(nil); err != nil || len(got) != 0 {
		t.Errorf("no targets: %v, %v", got, err)
	}
}

func TestDeviceName(t *testing.T) {
	if got := deviceName("/overlay/store/roots/root.sqsh", 1); got != "overlayupd-root.sqsh" {
		t.Errorf("deviceName = %q", got)
	}
	if got := deviceName("/x/root.sqsh", 3); got != "overlayupd-root.sqsh-3" {
		t.Errorf("deviceName try 3 = %q", got)
	}
	long := deviceName("/x/"+strings.Repeat("a", 300), 2)
	if len(long) != unix.DM_NAME_LEN-1 || !strings.HasSuffix(long, "-2") {
		t.Errorf("long name %q (%d bytes)", long, len(long))
	}
}
