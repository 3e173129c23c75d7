package dm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Paths this package reads; tests move them.
var (
	ControlPath = "/dev/mapper/control"
	// MiscDev is where the kernel publishes the control node's number
	// when device-mapper is loaded but /dev has no node for it.
	MiscDev = "/sys/class/misc/device-mapper/dev"
	DevDir  = "/dev"
)

// ErrNoDeviceMapper: the kernel has no device-mapper (dm-mod not built in
// nor loaded).
var ErrNoDeviceMapper = errors.New("the kernel has no device-mapper")

// control opens the control node, making it from sysfs's numbers when the
// kernel has device-mapper but /dev lacks the node (a static /dev).
func control() (*os.File, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ControlPath, err)
		}
		return f, nil
	}
	num, rerr := os.ReadFile(MiscDev)
	if rerr != nil {
		return nil, fmt.Errorf("%w (no %s, no %s: modprobe dm-mod)", ErrNoDeviceMapper, ControlPath, MiscDev)
	}
	major, minor, ok := strings.Cut(strings.TrimSpace(string(num)), ":")
	ma, err1 := strconv.ParseUint(major, 10, 32)
	mi, err2 := strconv.ParseUint(minor, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s: bad device number %q", MiscDev, num)
	}
	if err := os.MkdirAll(filepath.Dir(ControlPath), 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", ControlPath, err)
	}
	if err := unix.Mknod(ControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(uint32(ma), uint32(mi)))); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("make %s: %w", ControlPath, err)
	}
	f, err = os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ControlPath, err)
	}
	return f, nil
}

// call runs one ioctl on a fresh control fd.
func call(req uintptr, b buffer) error {
	ctl, err := control()
	if err != nil {
		return err
	}
	defer ctl.Close()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), req, uintptr(unsafe.Pointer(&b[0])))
	runtime.KeepAlive(b)
	if errno != 0 {
		return errno
	}
	return nil
}

// callGrowing runs an ioctl whose answer may not fit, with a bigger buffer
// each time the kernel says DM_BUFFER_FULL_FLAG.
func callGrowing(req uintptr, name string, flags uint32) (buffer, error) {
	for size := 16 << 10; size <= 4<<20; size *= 4 {
		b, err := newBuffer(size, name, flags)
		if err != nil {
			return nil, err
		}
		if err := call(req, b); err != nil {
			return nil, err
		}
		if b.header().Flags&unix.DM_BUFFER_FULL_FLAG == 0 {
			return b, nil
		}
	}
	return nil, errors.New("the kernel's answer does not fit in 4 MiB")
}

// Create makes the device name with the table targets (read-only if ro),
// and resumes it, so that it is ready for I/O. It returns the device
// number. On error nothing is left behind.
func Create(name string, ro bool, targets []Target) (dev uint64, err error) {
	var flags uint32
	if ro {
		flags = unix.DM_READONLY_FLAG
	}
	b, err := newBuffer(0, name, 0)
	if err != nil {
		return 0, err
	}
	if err := call(unix.DM_DEV_CREATE, b); err != nil {
		return 0, fmt.Errorf("create device-mapper device %s: %w", name, err)
	}
	dev = b.header().Dev
	defer func() {
		if err != nil {
			if rerr := Remove(name, false); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if b, err = tableLoad(name, flags, targets); err != nil {
		return 0, err
	}
	if err := call(unix.DM_TABLE_LOAD, b); err != nil {
		return 0, fmt.Errorf("load the table of %s (%s): %w", name, describe(targets), err)
	}
	// DM_DEV_SUSPEND without DM_SUSPEND_FLAG is a resume: it makes the
	// loaded table live.
	if b, err = newBuffer(0, name, 0); err != nil {
		return 0, err
	}
	if err := call(unix.DM_DEV_SUSPEND, b); err != nil {
		return 0, fmt.Errorf("resume %s: %w", name, err)
	}
	return dev, nil
}

func describe(targets []Target) string {
	var s []string
	for _, t := range targets {
		s = append(s, fmt.Sprintf("%d %d %s %s", t.Start, t.Length, t.Type, t.Params))
	}
	return strings.Join(s, "; ")
}

// Remove removes the device name. deferred asks the kernel to remove it
// when its last user closes it (DM_DEFERRED_REMOVE), so that a device
// under a mount goes away with the unmount, as an autoclear loop device
// does. A missing device is an error wrapping ENXIO.
func Remove(name string, deferred bool) error {
	var flags uint32
	if deferred {
		flags = unix.DM_DEFERRED_REMOVE
	}
	var err error
	for i := 0; i < 50; i++ {
		var b buffer
		if b, err = newBuffer(0, name, flags); err != nil {
			return err
		}
		if err = call(unix.DM_DEV_REMOVE, b); !errors.Is(err, unix.EBUSY) || deferred {
			break
		}
		// Busy just after an unmount or a failed open: the last
		// close may still be on its way.
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("remove device-mapper device %s: %w", name, err)
	}
	return nil
}

// Status returns the status line of each target of name (DM_TABLE_STATUS).
func Status(name string) ([]TargetStatus, error) {
	b, err := callGrowing(unix.DM_TABLE_STATUS, name, 0)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", name, err)
	}
	return parseStatus(b.data(), b.header().Target_count)
}

// Targets lists the target types the kernel has loaded, with their versions.
func Targets() (map[string][3]uint32, error) {
	b, err := callGrowing(unix.DM_LIST_VERSIONS, "", 0)
	if err != nil {
		return nil, fmt.Errorf("list device-mapper targets: %w", err)
	}
	return parseVersions(b.data())
}

// DevPath is the node of the device-mapper device numbered dev,
// /dev/dm-<minor>, once devtmpfs has made it (it waits up to a second).
func DevPath(dev uint64) (string, error) {
	p := filepath.Join(DevDir, fmt.Sprintf("dm-%d", unix.Minor(dev)))
	for i := 0; ; i++ {
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == dev {
			return p, nil
		}
		if i >= 50 {
			if err == nil {
				err = fmt.Errorf("it is not block device %d:%d", unix.Major(dev), unix.Minor(dev))
			}
			return "", fmt.Errorf("device node %s: %w", p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
