package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is what the boot configuration needs of a store's partition.
type Info struct {
	Device   string // the partition's device node, e.g. /dev/mmcblk0p3
	Disk     string // the whole disk, e.g. /dev/mmcblk0
	Part     int    // the partition number on Disk
	PartUUID string // for root=PARTUUID=
	FSType   string // for rootfstype=; "" when not recognised
}

// Root is the root= value for the partition.
func (i Info) Root() string { return "PARTUUID=" + i.PartUUID }

// ErrNotPartition means the device is not a partition of a disk (a whole
// disk, a loop device without partitions, a file).
var ErrNotPartition = errors.New("not a partition")

// Resolve describes the partition at dev (a device node such as
// /dev/sdb3, or a path through /dev/disk/by-*). The disk and the number come
// from sysfs; the PARTUUID from the disk's own partition table, so a card
// in a build host's reader gives the PARTUUID it has in the board.
func Resolve(dev string) (Info, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return Info{}, fmt.Errorf("%s: %w: not a block device", dev, ErrNotPartition)
	}
	disk, part, err := locate("/sys", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", dev, err)
	}
	return Describe(dev, filepath.Join("/dev", disk), part)
}

// DeviceOf returns the block device node of the filesystem that holds dir
// (a mounted store), through sysfs: /dev/NAME for the st_dev of dir.
func DeviceOf(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", dir, err)
	}
	return deviceName("/sys", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)))
}

func deviceName(sys string, major, minor uint32) (string, error) {
	link := filepath.Join(sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("%d:%d is no block device in %s: %w", major, minor, sys, err)
	}
	return filepath.Join("/dev", filepath.Base(real)), nil
}

// locate finds, under the sysfs tree sys, the disk and the partition number
// of device major:minor: /sys/dev/block/M:m is a link to the partition's
// directory, which has a "partition" file and lies in its disk's directory.
func locate(sys string, major, minor uint32) (disk string, part int, err error) {
	link := filepath.Join(sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", 0, fmt.Errorf("device %d:%d not in %s: %w", major, minor, sys, err)
	}
	b, err := os.ReadFile(filepath.Join(real, "partition"))
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("%w: %s is a whole disk; name one of its partitions", ErrNotPartition, filepath.Base(real))
	}
	if err != nil {
		return "", 0, err
	}
	part, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || part < 1 {
		return "", 0, fmt.Errorf("%s: partition number %q", real, b)
	}
	return filepath.Base(filepath.Dir(real)), part, nil
}

// Describe reads the PARTUUID of partition part from the table of disk and
// the filesystem type from the partition dev. Both may be regular files
// (disk images), which is how the tests use it.
func Describe(dev, disk string, part int) (Info, error) {
	info := Info{Device: dev, Disk: disk, Part: part}
	d, err := os.Open(disk)
	if err != nil {
		return info, fmt.Errorf("open the disk: %w", err)
	}
	defer d.Close()
	head := make([]byte, 2*sector)
	if _, err := io.ReadFull(d, head); err != nil {
		return info, fmt.Errorf("read the partition table of %s: %w", disk, err)
	}
	info.PartUUID, err = PartUUID(head, part, func(off int64, n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := d.ReadAt(b, off)
		return b, err
	})
	if err != nil {
		return info, fmt.Errorf("%s partition %d: %w", disk, part, err)
	}
	p, err := os.Open(dev)
	if err != nil {
		return info, fmt.Errorf("open the partition: %w", err)
	}
	defer p.Close()
	fs := make([]byte, 0x10048)
	n, err := io.ReadFull(p, fs)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return info, fmt.Errorf("read the filesystem of %s: %w", dev, err)
	}
	info.FSType = FSType(fs[:n])
	return info, nil
}
