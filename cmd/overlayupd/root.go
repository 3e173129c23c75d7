package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newRootCmd(name string) *cobra.Command {
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

With a store (a small partition holding squashfs root images, made by
'overlayupd store init'), updates are transactional:
  overlayupd apply new.sqsh    stage it; the next boot tries it once
  overlayupd commit            after a good boot: keep it
  (reboot without commit)      the committed root boots again by itself
  overlayupd rollback          go back to the previous root
  overlayupd status            what runs now and what the next boot does`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetErr(os.Stderr)
	root.AddCommand(newStatusCmd(), newEnableCmd(true), newEnableCmd(false),
		newLockCmd(true), newLockCmd(false), newInstallCmd(true), newInstallCmd(false),
		newApplyCmd(), newCommitCmd(), newRollbackCmd(), newGCCmd(), newStoreCmd())
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

// needRoot refuses a command that changes the system when not run as root.
func needRoot(cmd *cobra.Command, _ []string) error {
	if geteuid() != 0 {
		return errorf(cmd, "must be run as root: it changes the system (try: sudo %s)", cmd.CommandPath())
	}
	return nil
}

// geteuid is a variable so that tests can play a non-root user.
var geteuid = os.Geteuid
