package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

func newEnableCmd(e *env, enable bool) *cobra.Command {
	use, short, long := "enable", "Enable the overlay from the next boot on",
		"Remove the disable file (/overlay/disable on the real root), so that the next\nboot lays the overlay again. The real root is remounted read-write for the\nchange and read-only after."
	if !enable {
		use, short, long = "disable", "Boot the plain root, without overlay, from the next boot on",
			"Create the disable file (/overlay/disable on the real root), so that the next\nboot runs /sbin/init on the plain root. Undo with 'enable'."
	}
	var asJSON bool
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE: onStatus(&asJSON, disableFilePresent, !enable, func(st overlay.Status) (string, error) {
			state := "enabled"
			if !enable {
				state = "disabled"
			}
			if err := overlay.SetEnabled(st, enable); err != nil {
				return "", err
			}
			msg := "overlay " + state + " for next boot"
			if by := overlay.EnabledButOff(st); enable && by != "" {
				// Not "enabled" and then a warning that says otherwise.
				msg = fmt.Sprintf("disable file removed, but the next boot still runs without the overlay: %s; remove it there (the boot loader's config, or the script)", by)
			}
			return msg, nil
		}),
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// disableFilePresent is what enable and disable change.
func disableFilePresent(st overlay.Status) bool {
	_, err := os.Lstat(st.DisableFile)
	return err == nil
}

func newLockCmd(e *env, lock bool) *cobra.Command {
	use, short := "lock", "Remount the real root read-only"
	if !lock {
		use, short = "unlock", "Remount the real root read-write, to change it in place"
	}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.
Under the overlay the real root is at /overlay/robase; without it, it is /.
Changes made there survive reboots. Lock it again when done: a read-only
filesystem is what survives power cuts.`,
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE: onStatus(&asJSON, func(st overlay.Status) bool { return st.BaseReadOnly }, lock, func(st overlay.Status) (string, error) {
			state := "read-only"
			if !lock {
				state = "read-write"
			}
			return st.Base + " is " + state, overlay.SetBaseReadOnly(st, lock)
		}),
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// onStatus runs change on the current status and prints its one-line
// report when it succeeded; with --json, the report with the overlay's
// status after the change. what is the part of the status change sets to
// want once it succeeded: the report says whether it was so before.
func onStatus(asJSON *bool, what func(overlay.Status) bool, want bool, change func(overlay.Status) (string, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		st, err := overlay.CurrentStatus()
		if err != nil {
			return errorf(cmd, "%w", err)
		}
		if err := storeBase(st); err != nil {
			return errorf(cmd, "%w", err)
		}
		before := what(st)
		msg, err := change(st)
		if err != nil {
			return errorf(cmd, "%w", err)
		}
		r := report{Message: msg, Changed: before != want}
		if *asJSON {
			// The change is done: a status that cannot be read again is
			// left out, with a warning, not an error.
			if after, err := overlay.CurrentStatus(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the status after the change: %v\n", err)
			} else {
				r.Overlay = &after
			}
		}
		return r.print(cmd, *asJSON, nil, nil)
	}
}

func newInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Run the PID-1 path (what init=/sbin/init-overlay runs)",
		Long: `Run the PID-1 path: lay the overlay over the root, pivot into it and exec
/sbin/init. Only meaningful as PID 1, or in a private mount namespace for
testing; it refuses otherwise, because it would change this system's mounts.`,
		Args:               cobra.ArbitraryArgs,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
				return cmd.Help()
			}
			if !initAllowed() {
				return errorf(cmd, "refusing to run outside PID 1: it would remount this system's root (set OVERLAYUPD_INIT_TEST=1 only inside a private mount namespace)")
			}
			boot.Main(append([]string{"init-overlay"}, args...), os.Environ())
			return nil
		},
	}
}

// initAllowed reports whether the PID-1 path may run here: as PID 1 (a real
// boot, or a test's own PID namespace), or when a test asks for it from a
// mount namespace that is not the host's.
func initAllowed() bool {
	if os.Getpid() == 1 {
		return true
	}
	if os.Getenv("OVERLAYUPD_INIT_TEST") != "1" {
		return false
	}
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	host, err2 := os.Readlink("/proc/1/ns/mnt")
	return err1 == nil && err2 == nil && self != host
}

// storeBase refuses enable/disable/lock/unlock on a system booted from a
// store: its base is a root of the store (a squashfs image, a read-only
// subvolume), which is never changed in place.
func storeBase(st overlay.Status) error {
	top, err := boot.DefaultStore()
	if err != nil || st.Base != overlay.RobaseDir {
		return nil
	}
	m, err := trampoline.ReadMarker(top)
	if err != nil {
		return nil
	}
	what, change := "a squashfs image, read-only by design", "build a new image and 'overlayupd apply' it"
	if m.Format == (snapshot.Format{}).Name() {
		what, change = "a read-only btrfs subvolume", "'overlayupd update -- CMD' or 'overlayupd persist'"
	}
	return fmt.Errorf("this system booted from the store at %s: its root (%s) is %s and cannot be remounted writable or hold the disable file; to change the root: %s; to boot without the overlay: overlay=disable on the kernel command line", top, st.Base, what, change)
}
