// Package remount owns making a read-only filesystem writable for a moment
// and read-only again: the store for a command's renames and for the boot's
// trial rename, the real root for enable/disable/lock/unlock, a boot
// partition for install. One policy for all of them, because these are the
// lines a power cut hits: read-only is what survives, so it is put back as
// soon as the change is durable.
package remount

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
)

// Writable makes the mount that holds path writable, and returns restore,
// which puts back what was read-only before: the filesystem (superblock) when
// it was, else only the mount. A path on a writable mount, or with no mount
// table to read (an odd container: errors then say EROFS where it matters),
// gets a restore that does nothing.
func Writable(path string) (restore func() error, err error) {
	nothing := func() error { return nil }
	ms, err := mounts.Read()
	if err != nil {
		return nothing, nil
	}
	m, ok := Of(ms, path)
	sbRO := ok && mounts.HasOption(m.SuperOpts, "ro")
	if !ok || !sbRO && !m.ReadOnly() {
		return nothing, nil
	}
	if err := Set(m.MountPoint, false, false); err != nil {
		return nothing, err
	}
	return func() error { return Set(m.MountPoint, true, !sbRO) }, nil
}

// With runs fn with the mount that holds path writable (see Writable). A
// failure to put back read-only is returned when fn succeeded.
func With(path string, fn func() error) (err error) {
	restore, err := Writable(path)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	return fn()
}

// Of returns the mount that holds path, symlinks resolved.
func Of(ms []mounts.Mount, path string) (mounts.Mount, bool) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	return mounts.Of(ms, filepath.Clean(path))
}

// Set remounts the mount at target. Read-only makes the filesystem
// read-only, which is what protects it from power cuts, unless onlyMount is
// set (another mount writes to the same filesystem) or the filesystem is
// busy: then only this mount is made read-only. Read-write makes both the
// filesystem and the mount writable.
func Set(target string, ro, onlyMount bool) error {
	if !ro {
		// The superblock first, then the mount: a bind mount has its own flag.
		if err := unix.Mount("", target, "", unix.MS_REMOUNT, ""); err != nil {
			return fmt.Errorf("remount %s read-write: %w", target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("remount %s read-write: %w", target, err)
		}
		return nil
	}
	if !onlyMount {
		// Why sync first: a read-only remount fails with EBUSY while writes
		// are in flight, and a power cut right after must find them on disk.
		unix.Sync()
		err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}
