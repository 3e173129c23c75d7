package overlay

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/remount"
)

// CurrentStatus reads the running system's status.
func CurrentStatus() (Status, error) {
	ms, err := mounts.Read()
	if err != nil {
		return Status{}, err
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	st := StatusFrom(ms, exists, statfsUsage)
	if w := notInstalled(st.Active); w != "" {
		st.Warnings = append(st.Warnings, w)
	}
	if st.EnabledNextBoot {
		by, warn := nextBootDisabledBy(st.Base)
		if by != "" {
			st.EnabledNextBoot, st.DisabledBy = false, by
		}
		if warn != "" {
			st.Warnings = append(st.Warnings, warn)
		}
	}
	return st, nil
}

// NextBootFrom makes st's next-boot fields (EnabledNextBoot, DisabledBy,
// DisableFile) those of a boot that reads its configuration from root: in
// the store modes the store's top directory, where the trampoline reads
// /overlay/disable and the get-mode script before any image is mounted
// (st.Base, the booted image, is not read).
func (st *Status) NextBootFrom(root string) {
	st.DisableFile = filepath.Join(root, DisableFile)
	st.EnabledNextBoot, st.DisabledBy = true, ""
	if _, err := os.Lstat(st.DisableFile); err == nil {
		st.EnabledNextBoot, st.DisabledBy = false, st.DisableFile
	} else {
		by, warn := nextBootDisabledBy(root)
		if by != "" {
			st.EnabledNextBoot, st.DisabledBy = false, by
		}
		if warn != "" {
			st.Warnings = append(st.Warnings, warn)
		}
	}
}

// notInstalled warns, when this boot runs without the overlay, that its
// kernel command line does not run init-overlay at all: "enabled for next
// boot" then means nothing until 'overlayupd install' (or the boot loader's
// configuration) names it. This boot's line says what the next boot's will
// most likely be.
func notInstalled(active bool) string {
	if active {
		return ""
	}
	b, err := os.ReadFile(CmdlinePath)
	if err != nil {
		return ""
	}
	if v, _ := kcmdline.Lookup(kcmdline.Kernel(string(b)), "init"); filepath.Base(v) == "init-overlay" {
		return ""
	}
	return "this boot's kernel command line has no init=/sbin/init-overlay: the overlay starts only once the boot loader's configuration names it ('overlayupd install')"
}

// nextBootDisabledBy reports what else turns the overlay off at the next
// boot: the get-mode script on the real root (base), run as the boot would,
// or overlay=disable on this boot's kernel command line, which the next boot
// will most likely have too. warn, when set, says that the get-mode script
// fails: the boot then ignores it and takes the defaults (the overlay on),
// which may not be what its owner meant.
func nextBootDisabledBy(base string) (by, warn string) {
	if cmdline, err := os.ReadFile(CmdlinePath); err == nil {
		if _, off := CmdlineVars(string(cmdline)); off {
			return "overlay=disable on the kernel command line", ""
		}
	}
	script := filepath.Join(base, GetModeScript)
	if _, err := os.Stat(script); err != nil {
		return "", ""
	}
	vars, err := RunGetMode(ShellPath, script)
	if err != nil {
		return "", fmt.Sprintf("%v: the boot ignores the script and takes the defaults", err)
	}
	if cfg, _ := Resolve(vars, nil, func(string) bool { return false }); cfg.Disabled {
		return script + " sets " + cfg.DisabledBy, ""
	}
	return "", ""
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
// overlayctl did. The change is fsynced before it returns. See
// EnabledButOff for what else can keep the next boot without the overlay.
func SetEnabled(st Status, enable bool) error { return setEnabled(st, enable) }

// EnabledButOff says what still turns the overlay off at the next boot once
// the disable file is gone ("": nothing): overlay=disable on this boot's
// kernel command line (the next boot has it too if it is in the boot
// loader's config, not if it was typed once at the boot prompt), or the
// get-mode script. enable warns with it rather than fail: the file is gone
// as asked, and booting once with overlay=disable, enabling and rebooting
// is the original's own workflow.
func EnabledButOff(st Status) string {
	by, _ := nextBootDisabledBy(st.Base)
	return by
}

func setEnabled(st Status, enable bool) error {
	_, err := os.Lstat(st.DisableFile)
	present := err == nil
	if present == !enable {
		return nil
	}
	return remount.With(st.Base, func() error {
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

// SetBaseReadOnly remounts the real root read-only (lock) or read-write
// (unlock). A persistent writable layer lives on the same filesystem, so then
// only the mount is made read-only.
func SetBaseReadOnly(st Status, ro bool) error {
	return remount.Set(st.Base, ro, st.RWLayer == string(Persistent))
}
