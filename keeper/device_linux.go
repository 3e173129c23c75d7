package keeper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"
)

// Paths the watchdog edge reads; tests point them elsewhere.
var (
	// DevicePaths are tried in order: /dev/watchdog0 first, whose sysfs
	// directory its device number names, then the legacy /dev/watchdog.
	DevicePaths      = []string{"/dev/watchdog0", "/dev/watchdog"}
	SysClassWatchdog = "/sys/class/watchdog"
	SysDevChar       = "/sys/dev/char"
)

// ErrNoDevice is returned by Open when no watchdog device exists.
var ErrNoDevice = errors.New("no watchdog device")

// Open opens the watchdog device and reads what it is. Why O_CLOEXEC: the
// descriptor goes to the keeper only (exec.Cmd's ExtraFiles), never to the
// real init. Opening starts most watchdogs with their current timeout; the
// caller programs its own at once.
func Open(paths ...string) (*os.File, Device, error) {
	var f *os.File
	var dev Device
	if len(paths) == 0 {
		paths = DevicePaths
	}
	for _, p := range paths {
		var err error
		// O_NONBLOCK: a FIFO at the path (a /dev that is not devtmpfs)
		// must not hold PID 1 in open; O_NOCTTY: nor a tty become its
		// terminal. A watchdog ignores both.
		f, err = os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, dev, fmt.Errorf("%s is in use by another process (a watchdog daemon?): %w", p, err)
		}
		if err != nil {
			return nil, dev, err
		}
		if err := isWatchdog(f); err != nil {
			f.Close()
			return nil, dev, fmt.Errorf("%s: %w; name the watchdog with overlayupd.wdt_device=/dev/watchdogN, or turn it off with overlayupd.wdt_device=off", p, err)
		}
		dev.Path = p
		break
	}
	if f == nil {
		return nil, dev, fmt.Errorf("%w (%s)", ErrNoDevice, strings.Join(paths, ", "))
	}
	fd := int(f.Fd())
	if info, err := unix.IoctlGetWatchdogInfo(fd); err == nil {
		dev.Identity = unix.ByteSliceToString(info.Identity[:])
		dev.Options = info.Options
	}
	if t, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT); err == nil && t > 0 {
		dev.Timeout = time.Duration(t) * time.Second
	}
	dir := sysfsDir(f)
	dev.Min = readSeconds(filepath.Join(dir, "min_timeout"))
	dev.Max = readSeconds(filepath.Join(dir, "max_timeout"))
	dev.Nowayout = readInt(filepath.Join(dir, "nowayout")) == 1
	return f, dev, nil
}

// isWatchdog refuses a device that is not a watchdog, before anything is
// written to it: the keeper's feeds are writes, and on a disk named by a
// typo (overlayupd.wdt_device=/dev/mmcblk0) they would walk over its
// partition table, four bytes a second. A watchdog is a character device
// that answers WDIOC_GETSUPPORT (the watchdog core answers it for every
// driver). A variable: tests stand a plain file in for a driver.
var isWatchdog = func(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if m := fi.Mode(); m&os.ModeCharDevice == 0 {
		kind := fsmode.Kind(m)
		if m&os.ModeDevice != 0 {
			kind = "block device"
		}
		return fmt.Errorf("not a watchdog: a %s, not a character device", kind)
	}
	if _, err := unix.IoctlGetWatchdogInfo(int(f.Fd())); err != nil {
		return fmt.Errorf("not a watchdog: it does not answer WDIOC_GETSUPPORT (%w)", err)
	}
	return nil
}

// sysfsDir finds the watchdog's sysfs directory from the device number of
// f (a /dev/watchdogN node); the legacy /dev/watchdog is a misc device whose
// directory has no watchdog attributes: watchdog0 is the one it drives.
func sysfsDir(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil {
		d := filepath.Join(SysDevChar, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		if _, err := os.Stat(filepath.Join(d, "timeout")); err == nil {
			return d
		}
	}
	return filepath.Join(SysClassWatchdog, "watchdog0")
}

func readInt(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

func readSeconds(p string) time.Duration {
	if n := readInt(p); n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// SetTimeout programs the timeout and returns the one the driver took.
func SetTimeout(f *os.File, t time.Duration) (time.Duration, error) {
	fd := int(f.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, ceilSeconds(t)); err != nil {
		return 0, fmt.Errorf("set the watchdog timeout to %s: %w", FormatDuration(t), err)
	}
	got, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil || got <= 0 {
		return t, nil
	}
	return time.Duration(got) * time.Second, nil
}

// Keepalive feeds the watchdog: WDIOC_KEEPALIVE, else a write. Why the
// write: the kernel's watchdog core refuses the ioctl (EOPNOTSUPP) for a
// driver without WDIOF_KEEPALIVEPING, and a legacy driver may not know it
// (ENOTTY), but every driver is fed by a write. Never a 'V': that would let
// the next close (a keeper that dies) stop the watchdog.
func Keepalive(f *os.File) error {
	err := unix.IoctlWatchdogKeepalive(int(f.Fd()))
	if err == nil {
		return nil
	}
	if _, werr := f.Write([]byte{'\n'}); werr != nil {
		return fmt.Errorf("watchdog keepalive: %w; a write to feed it: %v", err, werr)
	}
	return nil
}

// MagicClose stops the watchdog: writing 'V' right before the close tells
// the driver that the close is meant (without it, a keeper that dies would
// stop the watchdog it was supposed to keep). With nowayout nothing stops it.
func MagicClose(f *os.File) error {
	_, werr := f.Write([]byte("V"))
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("watchdog magic close: %w", werr)
	}
	return cerr
}

// CardReset reports whether a watchdog driver says that it reset the board
// (bootstatus has WDIOF_CARDRESET). Drivers that do not know say 0.
func CardReset() bool {
	files, _ := filepath.Glob(filepath.Join(SysClassWatchdog, "*", "bootstatus"))
	for _, p := range files {
		if n := readInt(p); n > 0 && n&unix.WDIOF_CARDRESET != 0 {
			return true
		}
	}
	return false
}

// Uptime is CLOCK_BOOTTIME: the time since the kernel started, suspend
// included, the clock deadlines are counted on.
func Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
