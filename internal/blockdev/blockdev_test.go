package blockdev

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

func mbr(sig uint32, types ...byte) []byte {
	b := make([]byte, 2*sector)
	binary.LittleEndian.PutUint32(b[440:], sig)
	for i, t := range types {
		b[446+16*i+4] = t
	}
	b[510], b[511] = 0x55, 0xAA
	return b
}

// gpt lays out a protective MBR, a header at LBA 1 and entries at LBA 2.
func gpt(guids ...[]byte) []byte {
	b := mbr(0, 0xEE)
	hdr := b[sector:]
	copy(hdr, "EFI PART")
	binary.LittleEndian.PutUint64(hdr[72:], 2)
	binary.LittleEndian.PutUint32(hdr[80:], 128)
	binary.LittleEndian.PutUint32(hdr[84:], 128)
	ents := make([]byte, 128*128)
	for i, g := range guids {
		if g == nil {
			continue
		}
		e := ents[128*i:]
		e[0] = 0xAF // a type GUID, not zero
		copy(e[16:], g)
	}
	return append(b, ents...)
}

func reader(disk []byte) func(off int64, n int) ([]byte, error) {
	return func(off int64, n int) ([]byte, error) {
		if off+int64(n) > int64(len(disk)) {
			return nil, errors.New("past the end")
		}
		return disk[off : off+int64(n)], nil
	}
}

// The EFI system partition's type GUID as it lies on disk, and as text.
var (
	espOnDisk = []byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}
	espText   = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
)

func TestPartUUID(t *testing.T) {
	for _, tc := range []struct {
		name string
		disk []byte
		part int
		want string
		err  error
	}{
		{"pi card, rootfs", mbr(0x6c586e13, 0x0c, 0x83), 2, "6c586e13-02", nil},
		{"pi card, a third partition", mbr(0x6c586e13, 0x0c, 0x83, 0x83), 3, "6c586e13-03", nil},
		{"leading zeros kept", mbr(0x00ab0001, 0x83), 1, "00ab0001-01", nil},
		{"logical partition", mbr(0x1234abcd, 0x83, 0x05), 5, "1234abcd-05", nil},
		{"tenth partition, in hex", mbr(0x1234abcd, 0x83, 0x05), 10, "1234abcd-0a", nil},
		{"empty MBR slot", mbr(0x6c586e13, 0x0c, 0x83), 3, "", ErrNoPartUUID},
		{"no disk signature", mbr(0, 0x83), 1, "", ErrNoPartUUID},
		{"no partition table", make([]byte, 1024), 1, "", ErrNoPartUUID},
		{"partition 0", mbr(0x6c586e13, 0x83), 0, "", ErrNoPartUUID},
		{"gpt", gpt(espOnDisk), 1, espText, nil},
		{"gpt, second entry", gpt(nil, espOnDisk), 2, espText, nil},
		{"gpt, unused entry", gpt(espOnDisk), 2, "", ErrNoPartUUID},
		{"gpt, past the entries", gpt(espOnDisk), 129, "", ErrNoPartUUID},
		{"protective MBR without a header", mbr(0, 0xEE), 1, "", ErrNoPartUUID},
		{"too short", []byte{1, 2, 3}, 1, "", ErrNoPartUUID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PartUUID(tc.disk, tc.part, reader(tc.disk))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("PartUUID = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestFSType(t *testing.T) {
	ext := make([]byte, 4096)
	binary.LittleEndian.PutUint16(ext[1024+56:], 0xEF53)
	btr := make([]byte, 0x10048)
	copy(btr[0x10040:], "_BHRfS_M")
	fat := make([]byte, 512)
	copy(fat[82:], "FAT32   ")
	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"ext4", ext, "ext4"}, {"btrfs", btr, "btrfs"}, {"vfat", fat, "vfat"},
		{"zeros", make([]byte, 0x10048), ""}, {"short", []byte{0x53, 0xEF}, ""},
	} {
		if got := FSType(tc.head); got != tc.want {
			t.Errorf("%s: FSType = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLocate(t *testing.T) {
	sys := t.TempDir()
	disk := filepath.Join(sys, "devices/platform/mmc/mmc_host/mmc0/mmcblk0")
	for _, p := range []string{disk + "/mmcblk0p3", filepath.Join(sys, "dev/block")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(disk+"/mmcblk0p3/partition", []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"179:3": disk + "/mmcblk0p3", "179:0": disk} {
		if err := os.Symlink(target, filepath.Join(sys, "dev/block", link)); err != nil {
			t.Fatal(err)
		}
	}
	d, p, err := locate(sys, 179, 3)
	if err != nil || d != "mmcblk0" || p != 3 {
		t.Errorf("locate 179:3 = %q, %d, %v; want mmcblk0, 3", d, p, err)
	}
	if _, _, err := locate(sys, 179, 0); !errors.Is(err, ErrNotPartition) {
		t.Errorf("locate of the whole disk: %v, want ErrNotPartition", err)
	}
	if _, _, err := locate(sys, 8, 1); err == nil {
		t.Error("locate of an unknown device did not fail")
	}
}

// TestDescribeImage checks the parser against util-linux: sfdisk writes the
// tables of a disk image (a plain file, no loop device) and says what the
// PARTUUIDs are; mkfs writes the filesystem.
func TestDescribeImage(t *testing.T) {
	testroot.NeedTools(t, "sfdisk", "mkfs.ext4")
	sfdisk, _ := testroot.LookTool("sfdisk")
	mkfs, _ := testroot.LookTool("mkfs.ext4")
	dir := t.TempDir()
	for _, label := range []string{"dos", "gpt"} {
		img := filepath.Join(dir, label+".img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 64<<20); err != nil {
			t.Fatal(err)
		}
		layout := "label: " + label + "\n,8M\n,8M\n,\n"
		if label == "dos" {
			layout = "label: dos\nlabel-id: 0x6c586e13\n,8M,c\n,8M\n,\n"
		}
		cmd := exec.Command(sfdisk, "-q", img)
		cmd.Stdin = strings.NewReader(layout)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
		// The third partition as its own file, with ext4 on it.
		part := filepath.Join(dir, label+"-p3.img")
		if out, err := exec.Command(mkfs, "-q", "-F", part, "16M").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		info, err := Describe(part, img, 3)
		if err != nil {
			t.Fatalf("%s: Describe: %v", label, err)
		}
		want := "6c586e13-03"
		if label == "gpt" {
			out, err := exec.Command(sfdisk, "--part-uuid", img, "3").Output()
			if err != nil {
				t.Fatalf("sfdisk --part-uuid: %v", err)
			}
			want = strings.ToLower(strings.TrimSpace(string(out)))
		}
		if info.PartUUID != want || info.FSType != "ext4" || info.Root() != "PARTUUID="+want {
			t.Errorf("%s: %+v, want PARTUUID %s and ext4", label, info, want)
		}
	}
}
