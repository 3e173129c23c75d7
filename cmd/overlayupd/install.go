package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/internal/blockdev"
	"github.com/overlayupd/overlayupd/internal/bootcfg"
	"github.com/overlayupd/overlayupd/internal/remount"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

type installCmd struct {
	env        *env
	install    bool
	bootDir    string
	grub       string
	dryRun     bool
	btrfsStore bool
	autoCommit bool
	root       string
	store      string // --store-device
	kernelArch string // --kernel-arch
	restore    bool   // uninstall --restore
}

func newInstallCmd(e *env, install bool) *cobra.Command {
	c := &installCmd{env: e, install: install}
	use, short := "install", "Boot through the overlay: add 'ro init=/sbin/init-overlay' to the boot configuration"
	if !install {
		use, short = "uninstall", "Stop booting through the overlay: remove 'init=/sbin/init-overlay' from the boot configuration"
	}
	long := short + `.

Edits every boot configuration file found:
  Raspberry Pi  BOOT/firmware/cmdline.txt, else BOOT/cmdline.txt (one line, with root=)
  U-Boot        BOOT/uEnv.txt (the cmdline= line)
  extlinux      BOOT/extlinux/extlinux.conf (every APPEND line)
  GRUB          /etc/default/grub (GRUB_CMDLINE_LINUX), then update-grub
BOOT is /boot unless --boot-dir names another directory, e.g. the mounted boot
partition of an SD card on a build host (GRUB is then left alone, unless
--grub names a defaults file: an image tree's).

On a btrfs store (--btrfs-store, or when this system booted from one), a
line with rootfstype=btrfs and no rootflags= also gets rootflags=subvolid=5:
the store boots from its top level whatever the default subvolume is.

--store-device DEV boots from a store on another partition (e.g. a third
partition of a Raspberry Pi's card): root= becomes root=PARTUUID=... of DEV,
read from the disk's own partition table (so a card in a build host's reader
gives the PARTUUID it has in the board), rootfstype= the filesystem on DEV
(btrfs also gets rootflags=subvolid=5), and rootwait is added. DEV may also
be given as PARTUUID=... ; when that partition is not on this machine its
filesystem is not known, and each line keeps its rootfstype= unless
--btrfs-store says the store is btrfs. To go back, 'overlayupd uninstall --restore' puts
back each file's backup (the file as it was before overlayupd changed it).

install refuses a kernel command line that would grow past what the kernel
keeps (COMMAND_LINE_SIZE: 1024 bytes on 32-bit ARM and riscv, 2048 on arm64
and x86; the Raspberry Pi firmware takes 1024), less room for what the boot
loader adds: the kernel would cut it without a word and lose init= or root=.
The architecture is the running kernel's, or --kernel-arch's; with --boot-dir
and no --kernel-arch it is not known, and the smallest limit is taken.

Each edit is atomic (temp file, fsync, rename, fsync of the directory), keeps
the file as it was before the install in FILE.overlayupd.bak, and does nothing
when the file already says what it should. A backup older than changes made
to the file by hand after an uninstall is replaced by the next install;
uninstall --restore refuses a file changed since its backup in more than
overlayupd's own edits (it would throw the change away), and says so. install turns
'rw' into 'ro' and replaces any other init=; uninstall removes only
init=/sbin/init-overlay (the backup holds the original).

--auto-commit also installs the automatic commit of trials: on a root with
systemd, overlayupd-commit.service (enabled; it commits once
boot-complete.target is reached, i.e. after the health-check units that are
RequiredBy=boot-complete.target passed); else /etc/init.d/overlayupd-commit,
started as S99 (it commits a trial that stayed up 60s). Both do nothing in a
boot that is not a trial. On a store, /etc belongs to the image: install them
into the image's tree before you build it, with --root DIR (the boot
configuration is then left alone), or in an 'overlayupd update' snapshot.

Before it names /sbin/init-overlay on this system's kernel command line,
install checks that the kernel's root has it, a program the kernel can
run (this system's /, or the store's top directory when it booted from a
store): without it the next boot ends in a kernel panic.`
	example := "  overlayupd install --dry-run\n  overlayupd install --boot-dir /media/$USER/bootfs\n  overlayupd install --boot-dir /media/$USER/bootfs --store-device /dev/sdb3\n  overlayupd install --auto-commit --root ./rootfs"
	if !install {
		long = short + `.

Edits the same files as install (see 'overlayupd install --help'): every
boot configuration file found under BOOT (/boot, or --boot-dir), and GRUB's
/etc/default/grub (then update-grub). It takes out init=/sbin/init-overlay
and nothing else: the 'ro' install set stays (the root is mounted
read-only either way, and the system's fstab decides after), and no backup
is written.

--restore instead puts back each file's backup, FILE.overlayupd.bak, the
file as it was before overlayupd's install: the way back from an install
with --store-device, which changed root= too (plain uninstall refuses
those files, since their root= boots only through the overlay). It refuses
a file changed since the backup in more than overlayupd's own edits, and
says how to compare the two. A file with no backup (the original
init-overlay script set it up, or a hand did) gets what plain uninstall
does.

--auto-commit also removes the automatic commit of trials (from --root
DIR's tree, with --root).`
		example = "  overlayupd uninstall --dry-run\n  overlayupd uninstall\n  overlayupd uninstall --restore\n  overlayupd uninstall --boot-dir /media/$USER/bootfs --restore\n  overlayupd uninstall --auto-commit --root ./rootfs"
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if c.root != "" && !c.autoCommit {
				return errorf(cmd, "--root is where --auto-commit installs its files: give --auto-commit too")
			}
			if c.dryRun || c.bootDir != "" || c.root != "" {
				return nil
			}
			return e.needRoot(cmd, args)
		},
		RunE: c.run,
	}
	cmd.Flags().StringVar(&c.bootDir, "boot-dir", "", "directory of the boot partition (default /boot; set it to edit an SD card on a build host)")
	cmd.Flags().StringVar(&c.grub, "grub", bootcfg.DefaultGrub, "GRUB defaults file (left alone with --boot-dir, unless named)")
	cmd.Flags().BoolVarP(&c.dryRun, "dry-run", "n", false, "print the changes as a diff and write nothing")
	cmd.Flags().BoolVar(&c.autoCommit, "auto-commit", false, "also (un)install the automatic commit of trials: overlayupd-commit.service, or /etc/init.d/overlayupd-commit")
	cmd.Flags().StringVar(&c.root, "root", "", "with --auto-commit: the root tree to install it into (an image's tree); the boot configuration is left alone")
	if install {
		cmd.Flags().BoolVar(&c.btrfsStore, "btrfs-store", false, "the root is a btrfs store: add rootflags=subvolid=5 next to rootfstype=btrfs (default: when this system booted from one)")
		cmd.Flags().StringVar(&c.kernelArch, "kernel-arch", "", "architecture of the kernel that boots with these files (arm, arm64, x86, riscv), for the command line's length limit (default: the running kernel's; with --boot-dir: not known, the smallest limit)")
		cmd.Flags().StringVar(&c.store, "store-device", "", "boot from the store on this partition: root=PARTUUID=<its PARTUUID> rootfstype=<its filesystem> rootwait (DEV, or PARTUUID=...)")
	} else {
		// Accepted and hidden: it does nothing for uninstall, and scripts
		// that passed it must not break.
		cmd.Flags().BoolVar(&c.btrfsStore, "btrfs-store", false, "no effect on uninstall")
		_ = cmd.Flags().MarkHidden("btrfs-store")
		cmd.Flags().BoolVar(&c.restore, "restore", false, "put back each file's backup (FILE.overlayupd.bak: the file before the install), undoing --store-device too; refused for a file changed since in more than overlayupd's edits")
	}
	return cmd
}

func (c *installCmd) run(cmd *cobra.Command, args []string) error {
	if c.autoCommit {
		if err := c.runAutoCommit(cmd); err != nil || c.root != "" {
			return err
		}
	}
	return c.runBootConfig(cmd, args)
}

func (c *installCmd) runAutoCommit(cmd *cobra.Command) error {
	root := c.root
	if root == "" {
		root = "/"
	}
	// A mistyped --root must not become a new tree that holds the files
	// while the image's own goes without them.
	if fi, err := os.Stat(filepath.Join(root, "etc")); err != nil || !fi.IsDir() {
		return errorf(cmd, "%s has no etc/ directory: give the root tree of the image (the directory with etc/ and usr/ in it)", root)
	}
	if c.dryRun {
		for _, f := range autoCommitPlan(root) {
			verb := "would write"
			if !c.install {
				verb = "would remove"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, filepath.Join(root, f.path))
		}
		return nil
	}
	done, err := installAutoCommit(root, !c.install)
	for _, p := range done {
		verb := "installed"
		if !c.install {
			verb = "removed"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, p)
	}
	if err != nil {
		return errorf(cmd, "automatic commit: %w", err)
	}
	return nil
}

func (c *installCmd) runBootConfig(cmd *cobra.Command, _ []string) error {
	if c.install && c.bootDir == "" && c.store == "" {
		if err := checkKernelInit(c.env.kernelRoot()); err != nil {
			return errorf(cmd, "%w", err)
		}
	}
	bootDir, grub := c.env.bootDir, c.grub
	grubNamed := cmd.Flags().Changed("grub")
	if c.bootDir != "" && !grubNamed {
		// A build host's own GRUB file is not the SD card's business,
		// unless --grub names one (an image tree's).
		bootDir, grub = c.bootDir, ""
	} else if c.bootDir != "" {
		bootDir = c.bootDir
	}
	targets, err := bootcfg.Find(bootDir, grub)
	if err != nil {
		return errorf(cmd, "%w\nmount the boot partition (e.g. mount /boot) or name it with --boot-dir", err)
	}
	if grubNamed && !slices.ContainsFunc(targets, func(t bootcfg.Target) bool { return t.Kind == bootcfg.Grub }) {
		// Named and not there: a typo must not pass as done.
		return errorf(cmd, "--grub %s: no such file (GRUB's defaults file is /etc/default/grub)", grub)
	}
	arch, err := targetArch(c.kernelArch, c.bootDir)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	btrfsStore := c.btrfsStore || bootedBtrfsStore()
	out := cmd.OutOrStdout()
	var root, fstype string
	if c.store != "" {
		if root, fstype, err = storeRoot(c.store); err != nil {
			return errorf(cmd, "--store-device %s: %w", c.store, err)
		}
		if fstype == "" && c.btrfsStore {
			// A PARTUUID not on this machine: --btrfs-store says what it
			// holds. Without this the line kept its old rootfstype= (ext4
			// on a Raspberry Pi OS card), and the kernel could not mount
			// the btrfs store.
			fstype = "btrfs"
		}
		btrfsStore = btrfsStore || fstype == "btrfs"
		fmt.Fprintf(out, "store partition: root=%s", root)
		if fstype != "" {
			fmt.Fprintf(out, " rootfstype=%s", fstype)
		}
		fmt.Fprintln(out)
		if fstype == "" {
			fmt.Fprintf(out, "the filesystem on %s is not known here: each line keeps its rootfstype=, which must be the store's (for a btrfs store, add --btrfs-store)\n", root)
		}
	}
	var failed []error
	grubFailed := false
	for _, t := range targets {
		t.BtrfsStore = btrfsStore
		t.Root, t.RootFSType, t.Arch = root, fstype, arch
		if t.Kind != bootcfg.Grub { // --grub names its file itself
			t.Within = c.bootDir
		}
		var res bootcfg.Result
		noBackup := false
		if c.restore {
			res, err = restoreWritable(t, c.dryRun)
			if err == nil && res.Backup == "" {
				// No backup: overlayupd never changed the file (the
				// original script did, or a hand): take out what
				// uninstall takes out, rather than leave the overlay on.
				noBackup = true
				res, err = editWritable(t, false, c.dryRun)
			}
		} else {
			res, err = editWritable(t, c.install, c.dryRun)
		}
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.CommandPath(), err)
			continue
		}
		switch {
		case !res.Changed && noBackup:
			fmt.Fprintf(out, "%s: no backup to restore, and no %s to take out\n", t.Path, bootcfg.TrampolinePath)
		case !res.Changed:
			fmt.Fprintf(out, "%s: already up to date\n", t.Path)
		case c.dryRun:
			fmt.Fprint(out, res.Diff)
		case noBackup:
			fmt.Fprintf(out, "%s: no backup to restore (overlayupd never changed it): took out init=%s, as uninstall does\n", t.Path, bootcfg.TrampolinePath)
		case c.restore:
			fmt.Fprintf(out, "%s: restored from %s\n", t.Path, res.Backup)
		case !c.install:
			fmt.Fprintf(out, "%s: updated: init=%s taken out\n", t.Path, bootcfg.TrampolinePath)
		case res.BackupRefreshed:
			fmt.Fprintf(out, "%s: updated (original kept in %s, replacing an older backup that predates changes made to the file since)\n", t.Path, res.Backup)
		default:
			fmt.Fprintf(out, "%s: updated (original kept in %s)\n", t.Path, res.Backup)
		}
		if t.Kind == bootcfg.Grub && !res.Changed && !c.restore && c.bootDir == "" && grubCfgStale(c.env.bootDir, c.install) {
			// The defaults file says it already, grub.cfg not yet (an
			// update-grub that failed or was missing on an earlier run).
			fmt.Fprintln(out, "GRUB: grub.cfg does not have the change yet")
			res.NeedsGrubUpdate = true
		}
		if res.NeedsGrubUpdate {
			msg, err := updateGrub(c.dryRun)
			fmt.Fprintln(out, msg)
			grubFailed = grubFailed || err != nil
		}
	}
	if len(failed) > 0 {
		return errorf(cmd, "%d of %d files not changed", len(failed), len(targets))
	}
	if grubFailed {
		return errorf(cmd, "%s is changed, but grub.cfg is not: the next boot does not see the change until it is regenerated (update-grub, or grub-mkconfig -o /boot/grub/grub.cfg)", grub)
	}
	if c.install && !c.dryRun && c.bootDir == "" {
		fmt.Fprintln(out, "the overlay starts at the next boot; 'overlayupd status' shows it")
	}
	return nil
}

// checkKernelInit refuses an install that would name on the kernel command
// line a program the kernel cannot run: init=/sbin/init-overlay is a path
// on the root the kernel mounts (root, this system's / or, when it booted
// from a store, the store's top directory), and when it is missing or not
// a program the next boot ends in a kernel panic ("Requested init
// /sbin/init-overlay failed"), a board that needs a hand at its card. The
// check is the PID-1 path's own (an ELF binary, or a script whose
// interpreter is there), with symbolic links resolved inside root.
func checkKernelInit(root string) error {
	if err := overlay.CheckRootProgram(root, bootcfg.TrampolinePath); err != nil {
		return fmt.Errorf("%w\nthe kernel would find no init at the next boot: install the binary first (make install, or install -m 0755 init-overlay %s), then run install again",
			err, filepath.Join(root, bootcfg.TrampolinePath))
	}
	return nil
}

// editWritable edits t; when its filesystem is mounted read-only (a boot
// partition often is), it remounts it read-write for the edit and back.
func editWritable(t bootcfg.Target, install, dryRun bool) (bootcfg.Result, error) {
	res, err := bootcfg.Edit(t, install, dryRun)
	if !errors.Is(err, unix.EROFS) {
		return res, err
	}
	err = remount.With(t.Path, func() error {
		var err error
		res, err = bootcfg.Edit(t, install, dryRun)
		return err
	})
	return res, err
}

// targetArch is the architecture of the kernel that will boot with the
// edited files (a bootcfg.KernelArch key): --kernel-arch's, else the
// running kernel's when the files are this system's own; "" when not known
// (another machine's boot partition), which takes the smallest limit.
func targetArch(flag, bootDir string) (string, error) {
	if flag != "" {
		if a := bootcfg.KernelArch(flag); a != "" {
			return a, nil
		}
		return "", fmt.Errorf("--kernel-arch %q: give arm, arm64, x86 or riscv (or uname -m's name for one)", flag)
	}
	if bootDir != "" {
		return "", nil // the build host's kernel says nothing of the board's
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", nil
	}
	return bootcfg.KernelArch(unix.ByteSliceToString(u.Machine[:])), nil
}

// storeRoot turns --store-device into root= and rootfstype= values.
func storeRoot(dev string) (root, fstype string, err error) {
	if strings.HasPrefix(dev, "PARTUUID=") {
		if len(dev) == len("PARTUUID=") || strings.ContainsAny(dev, " \t\"") {
			return "", "", fmt.Errorf("give the PARTUUID as PARTUUID=6c586e13-03")
		}
		// The partition may be on this machine (a card in a reader): then
		// its filesystem is known.
		id := strings.ToLower(strings.TrimPrefix(dev, "PARTUUID="))
		if info, err := blockdev.Resolve(filepath.Join("/dev/disk/by-partuuid", id)); err == nil && (info.FSType == "ext4" || info.FSType == "btrfs") {
			return dev, info.FSType, nil
		}
		return dev, "", nil
	}
	info, err := blockdev.Resolve(dev)
	if err != nil {
		return "", "", fmt.Errorf("%w\nname the store's partition (e.g. /dev/mmcblk0p3, or /dev/sdb3 for a card in a reader), or give PARTUUID=... (blkid shows it)", err)
	}
	if info.FSType != "ext4" && info.FSType != "btrfs" {
		return "", "", fmt.Errorf("%s holds no ext4 or btrfs filesystem (found %q): make the store first (mkfs.ext4 -L store %s; overlayupd store init)", dev, info.FSType, dev)
	}
	return info.Root(), info.FSType, nil
}

// restoreWritable puts back t's backup, remounting a read-only boot
// partition for it like editWritable.
func restoreWritable(t bootcfg.Target, dryRun bool) (bootcfg.Result, error) {
	res, err := bootcfg.Restore(t, dryRun)
	if !errors.Is(err, unix.EROFS) {
		return res, err
	}
	err = remount.With(t.Path, func() error {
		var err error
		res, err = bootcfg.Restore(t, dryRun)
		return err
	})
	return res, err
}

// grubCfgStale says whether the grub.cfg under bootDir (grub/ or grub2/)
// disagrees with the defaults file's install (or uninstall): it has no
// init=/sbin/init-overlay after an install, or still has one after an
// uninstall. No grub.cfg found: false, nothing to tell.
func grubCfgStale(bootDir string, install bool) bool {
	for _, d := range []string{"grub", "grub2"} {
		b, err := os.ReadFile(filepath.Join(bootDir, d, "grub.cfg"))
		if err == nil {
			return bytes.Contains(b, []byte("init="+bootcfg.TrampolinePath)) != install
		}
	}
	return false
}

// updateGrub regenerates grub.cfg with update-grub, and says what it did;
// err when grub.cfg was not regenerated (no update-grub, or it failed):
// the edit then has no effect at the next boot.
func updateGrub(dryRun bool) (string, error) {
	p, err := exec.LookPath("update-grub")
	if err != nil {
		if dryRun {
			return "GRUB: would need grub.cfg regenerated (no update-grub here: grub-mkconfig -o /boot/grub/grub.cfg)", nil
		}
		return "GRUB: no update-grub here: run your distribution's grub.cfg generator (grub-mkconfig -o /boot/grub/grub.cfg) for the change to take effect", err
	}
	if dryRun {
		return "GRUB: would run " + p, nil
	}
	out, err := exec.Command(p).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("GRUB: %s failed (%v); run it by hand:\n%s", p, err, out), err
	}
	return "GRUB: ran " + p, nil
}

// bootedBtrfsStore reports whether this system booted from a btrfs store.
func bootedBtrfsStore() bool {
	top, err := boot.DefaultStore()
	if err != nil {
		return false
	}
	m, err := trampoline.ReadMarker(top)
	return err == nil && m.Format == (snapshot.Format{}).Name()
}
