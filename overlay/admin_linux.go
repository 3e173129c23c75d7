package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/mounts"
)

// CurrentStatus reads the running system's status.
func CurrentStatus() (Status, error) {
	ms, err := mounts.Read()
	if err != nil {
		return Status{}, err
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	st := StatusFrom(ms, exists, statfsUsage)
	if st.EnabledNextBoot {
		if by := nextBootDisabledBy(st.Base); by != "" {
			st.EnabledNextBoot, st.DisabledBy = false, by
		}
	}
	return st, nil
}

// nextBootDisabledBy reports what else turns the overlay off at the next
// boot: the get-mode script on the real root (base), run as the boot would,
// or overlay=disable on this boot's kernel command line, which the next boot
// will most likely have too.
func nextBootDisabledBy(base string) string {
	if cmdline, err := os.ReadFile(CmdlinePath); err == nil {
		if _, off := CmdlineVars(string(cmdline)); off {
			return "overlay=disable on the kernel command line"
		}
	}
	script := filepath.Join(base, GetModeScript)
	if _, err := os.Stat(script); err != nil {
		return ""
	}
	vars, err := RunGetMode(context.Background(), ShellPath, script)
	if err != nil {
		return ""
	}
	if cfg, _ := Resolve(vars, nil, func(string) bool { return false }); cfg.Disabled {
		return script + " sets " + cfg.DisabledBy
	}
	return ""
}

func statfsUsage(path string) (Usage, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return Usage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(s.Bsize)
	return Usage{Size: s.Blocks * bs, Used: (s.Blocks - s.Bfree) * bs}, nil
}

// SetEnabled creates (enable=false) or removes the disable file on the real
// root, remounting it read-write for the change and back read-only after, as
// overlayctl did. The change is fsynced before it returns.
func SetEnabled(st Status, enable bool) error {
	_, err := os.Lstat(st.DisableFile)
	present := err == nil
	if present == !enable {
		return nil
	}
	return withWritableBase(st, func() error {
		if enable {
			if err := os.Remove(st.DisableFile); err != nil {
				return err
			}
			return atomicfile.SyncDir(filepath.Dir(st.DisableFile))
		}
		if err := os.MkdirAll(filepath.Dir(st.DisableFile), 0o755); err != nil {
			return err
		}
		return atomicfile.WriteFile(st.DisableFile, []byte("1\n"), 0o644)
	})
}

// withWritableBase runs fn with the base writable.
func withWritableBase(st Status, fn func() error) error {
	return WithWritable(st.Base, fn)
}

// WithWritable runs fn with the mount at target writable and then puts back
// what was read-only before: the filesystem (superblock), or only the mount.
func WithWritable(target string, fn func() error) (err error) {
	ms, err := mounts.Read()
	if err != nil {
		return err
	}
	m, ok := mounts.Find(ms, target)
	if !ok {
		return fmt.Errorf("%s is not a mount point", target)
	}
	sbRO := mounts.HasOption(m.SuperOpts, "ro")
	if !sbRO && !m.ReadOnly() {
		return fn()
	}
	if err := SetReadOnly(target, false, false); err != nil {
		return err
	}
	defer func() {
		if rerr := SetReadOnly(target, true, !sbRO); rerr != nil && err == nil {
			err = rerr
		}
	}()
	return fn()
}

// SetBaseReadOnly remounts the real root read-only (lock) or read-write
// (unlock). A persistent writable layer lives on the same filesystem, so then
// only the mount is made read-only.
func SetBaseReadOnly(st Status, ro bool) error {
	return SetReadOnly(st.Base, ro, st.RWLayer == string(Persistent))
}

// SetReadOnly remounts the mount at target. Read-only makes the filesystem
// read-only, which is what protects it from power cuts, unless onlyMount is
// set (another mount writes to the same filesystem) or the filesystem is
// busy: then only this mount is made read-only. Read-write makes both the
// filesystem and the mount writable.
func SetReadOnly(target string, ro, onlyMount bool) error {
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
