// Package loop owns loop devices: it attaches a file to a free one
// (LOOP_CONFIGURE, read-only and autoclear) and mounts it, holding the loop
// device open until the mount has its own reference.
package loop

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// loopControl is the loop control device; a variable so tests can point it
// elsewhere.
var loopControl = "/dev/loop-control"

// loopAttempts bounds retries when another process takes the free loop device
// between LOOP_CTL_GET_FREE and our configure (EBUSY).
const loopAttempts = 32

// Mount loop-mounts the file image at target as a filesystem of type fstype,
// with mount(2)'s flags (MS_RDONLY makes the loop device read-only too) and
// data. The loop device is autoclear, so it goes away by itself when target
// is unmounted. It returns the loop device it used.
func Mount(image, target, fstype string, flags uintptr, data string) (dev string, err error) {
	backing, err := OpenImage(image, flags&unix.MS_RDONLY != 0)
	if err != nil {
		return "", err
	}
	defer backing.Close()
	lf, err := attach(image, backing, flags&unix.MS_RDONLY != 0)
	if err != nil {
		return "", fmt.Errorf("attach %s to a loop device: %w", image, err)
	}
	// Why this order: with LO_FLAGS_AUTOCLEAR the device is detached on the last
	// close. The mount takes its own reference, so the loop fd must stay open until
	// mount(2) has returned; closing it earlier detaches the device under the
	// mount, which then fails with EIO/ENXIO.
	if err := unix.Mount(lf.Name(), target, fstype, flags, data); err != nil {
		_ = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		lf.Close()
		return "", fmt.Errorf("mount %s (%s) on %s: %s: %w", image, lf.Name(), target, mountHint(err, fstype), err)
	}
	return lf.Name(), lf.Close()
}

// OpenImage opens the file image to back a loop device, read-only if ro.
func OpenImage(image string, ro bool) (*os.File, error) {
	// Why O_NONBLOCK, O_NOFOLLOW and the check before anything else: an
	// entry planted as a FIFO must not hang the boot in open(2), one planted
	// as a link must not lead out of the store, and only a regular file can
	// back a loop device.
	mode := os.O_RDONLY
	if !ro {
		mode = os.O_RDWR
	}
	backing, err := os.OpenFile(image, mode|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mount image: %w", err)
	}
	if fi, err := backing.Stat(); err != nil || !fi.Mode().IsRegular() {
		backing.Close()
		return nil, fmt.Errorf("mount image %s: %w", image, ErrNotFile)
	}
	return backing, nil
}

// Attach binds backing (opened with OpenImage) to a free loop device,
// autoclear, read-only if ro, and returns the open loop device: the device
// goes away when its last user closes it.
func Attach(image string, backing *os.File, ro bool) (*os.File, error) {
	lf, err := attach(image, backing, ro)
	if err != nil {
		return nil, fmt.Errorf("attach %s to a loop device: %w", image, err)
	}
	return lf, nil
}

// ErrNotFile is returned by Mount for an image that is not a regular file.
var ErrNotFile = errors.New("not a regular file")

// mountHint says in words what a mount(2) errno means for an image.
func mountHint(err error, fstype string) string {
	switch {
	case errors.Is(err, unix.ENODEV):
		return "the kernel has no " + fstype + " support (modprobe " + fstype + ")"
	case errors.Is(err, unix.EINVAL):
		return "the kernel rejects the image (corrupt, or its compressor is not built in)"
	case errors.Is(err, unix.EIO):
		return "I/O error reading the image"
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return "the mount point does not exist"
	}
	return "mount failed"
}

// attach binds backing to a free loop device, autoclear, read-only if ro,
// and returns the open loop device.
func attach(image string, backing *os.File, ro bool) (*os.File, error) {
	ctl, err := os.OpenFile(loopControl, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open loop control (is the loop module loaded?): %w", err)
	}
	defer ctl.Close()
	var lastErr error
	for range loopAttempts {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		lf, err := openLoopDev(fmt.Sprintf("/dev/loop%d", n))
		if err != nil {
			return nil, err
		}
		if lastErr = configure(lf, backing, image, ro); lastErr == nil {
			return lf, nil
		}
		lf.Close()
		if !errors.Is(lastErr, unix.EBUSY) {
			return nil, fmt.Errorf("configure %s: %w", lf.Name(), lastErr)
		}
		// Another process took this device after GET_FREE; ask again.
	}
	return nil, fmt.Errorf("no free loop device after %d attempts: %w", loopAttempts, lastErr)
}

// openLoopDev opens a loop device node, waiting briefly for devtmpfs/udev to
// create a node that LOOP_CTL_GET_FREE has just allocated.
func openLoopDev(name string) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(name, os.O_RDWR|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) {
			f, err = os.OpenFile(name, os.O_RDONLY|unix.O_CLOEXEC, 0)
		}
		if err == nil || !errors.Is(err, unix.ENOENT) || i >= 50 {
			if err != nil {
				return nil, fmt.Errorf("open loop device: %w", err)
			}
			return f, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// configure uses LOOP_CONFIGURE (Linux 5.8+), which sets the backing file
// and the flags in one step, and falls back to LOOP_SET_FD + LOOP_SET_STATUS64 on
// older kernels. A read-only backing file makes the device read-only on the
// fallback path too.
func configure(lf, backing *os.File, image string, ro bool) error {
	info := unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR}
	if ro {
		info.Flags |= unix.LO_FLAGS_READ_ONLY
	}
	copy(info.File_name[:len(info.File_name)-1], image)
	fd := int(lf.Fd())
	err := unix.IoctlLoopConfigure(fd, &unix.LoopConfig{Fd: uint32(backing.Fd()), Info: info})
	if err == nil || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY)) {
		return err
	}
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return err
	}
	info.Flags = unix.LO_FLAGS_AUTOCLEAR
	if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
		_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}
