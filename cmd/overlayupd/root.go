package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newRootCmd(name string, e *env) *cobra.Command {
	ctl := name == "overlayctl"
	if !ctl {
		name = "overlayupd"
	}
	root := &cobra.Command{
		Use:     name,
		Short:   "Writable overlay and transactional updates for a read-only root",
		Version: version,
		Long: name + ` keeps the root filesystem read-only and lays a writable overlay over it at
boot (tmpfs, so changes vanish on reboot, or a persistent directory).

Boot it by adding "ro init=/sbin/init-overlay" to the kernel command line:
` + name + ` install does that for Raspberry Pi cmdline.txt, U-Boot uEnv.txt,
extlinux.conf and GRUB.

With a store (a partition holding the roots: squashfs images, or read-only
btrfs subvolumes; made by 'overlayupd store init'), updates are transactional:
  overlayupd apply new.sqsh      stage an image; the next boot tries it once
  overlayupd update -- CMD       (btrfs) run CMD in a snapshot of the running root, stage it
  overlayupd persist             (btrfs) fold the overlay's changes into a new root, stage it
  overlayupd commit              after a good boot: keep it
  (reboot without commit)        the committed root boots again by itself
  overlayupd rollback            go back to the previous root
  overlayupd status              what runs now and what the next boot does`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetErr(os.Stderr)
	root.AddCommand(newStatusCmd(e), newEnableCmd(e, true), newEnableCmd(e, false),
		newLockCmd(e, true), newLockCmd(e, false), newInstallCmd(e, true), newInstallCmd(e, false),
		newApplyCmd(e), newUpdateCmd(e), newPersistCmd(e), newCommitCmd(e), newRollbackCmd(e), newMarkGoodCmd(e), newGCCmd(e), newStoreCmd(e), newDigestCmd(e))
	if !ctl {
		root.AddCommand(newInitCmd())
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath())
	})
	return root
}

// errorf builds an error that names the command it comes from.
func errorf(cmd *cobra.Command, format string, a ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{cmd.CommandPath()}, a...)...)
}
