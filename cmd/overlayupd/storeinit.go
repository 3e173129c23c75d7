package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/blockdev"
	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/remount"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// InitName is where the store holds the trampoline the kernel runs.
var InitName = strings.TrimPrefix(trampoline.TrampolinePath, "/")

type storeInitCmd struct {
	image    string
	btrfs    bool
	from     string
	trust    []string
	sig      string
	insecure bool
	// trampoline is --trampoline: the init-overlay binary to install.
	trampoline string
	// installed is the file that was installed as the trampoline.
	installed string
	// arch is --arch; machines what the first root's init must run on.
	arch     string
	machines []uint16
}

func newStoreCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage root image stores",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newStoreInitCmd(e))
	return cmd
}

func newStoreInitCmd(e *env) *cobra.Command {
	c := &storeInitCmd{}
	cmd := &cobra.Command{
		Use:   "init DIR (--image IMAGE | --btrfs [--image IMAGE | --from DIR2])",
		Short: "Make DIR a bootable store holding its first committed root",
		Long: `Make DIR (e.g. the mounted store partition of an SD card, on a build host) a
bootable store: the PID-1 binary init-overlay as DIR/` + InitName + ` (the one beside
this binary, or in /sbin or /usr/sbin, or --trampoline FILE), the mount points /dev,
/proc, /sys and /overlay, and the first committed root in DIR/` + trampoline.SlotDir + `/.

A squashfs store (the default) holds root images: IMAGE, validated as apply
validates it, becomes DIR/` + trampoline.SlotDir + `/root.sqsh.

A btrfs store (--btrfs) holds roots as read-only subvolumes: DIR must be the
top level (subvolid=5) of a mounted btrfs, and its default subvolume must be
5. The first root, DIR/` + trampoline.SlotDir + `/root, is IMAGE unpacked (--image), a copy
of the tree DIR2 (--from, one filesystem, like cp -ax), or without either a
snapshot of the running system's root, when that root is on this btrfs.
Boot it with rootfstype=btrfs rootflags=subvolid=5 on the kernel command line.

Trust: --trust KEY.pub (a minisign public key; repeat it for more) makes
the first image's signature required: IMAGE.minisig beside it, or --sig
FILE, by one of these keys. The image must itself carry the keys its
successors will be signed with, in /etc/overlayupd/trusted.d/*.pub: from
its first boot on, 'overlayupd apply' checks new images against those. The
--trust keys are not kept on the store. Without --trust, the keys the
running system trusts apply; with none, nothing is checked.

Every store gets a device key, DIR/` + KeysDir + `/` + trust.DeviceKeyFile + ` (mode 0600, outside
every root): it signs the store's records of where each root came from,
and the roots this device makes itself (update, persist). It is trusted
for this store's own records only.

The marker file DIR/` + trampoline.MarkerFile + ` is written last, so a store
whose initialisation was cut off is never taken for one: run init again.
A directory that already is a store is refused: use 'overlayupd apply --store'.`,
		Example: "  overlayupd store init /media/$USER/store --image root.sqsh\n  overlayupd store init /media/$USER/store --image root.sqsh --trust release.pub\n  overlayupd store init /mnt/store --btrfs --image root.sqsh\n  overlayupd store init /mnt/store --btrfs --from /media/$USER/rootfs",
		Args:    cobra.ExactArgs(1),
		PreRunE: e.needRoot,
		RunE:    func(cmd *cobra.Command, args []string) error { return c.run(cmd, e, args) },
	}
	cmd.Flags().StringVar(&c.image, "image", "", "squashfs image of the first committed root (required for a squashfs store)")
	cmd.Flags().BoolVar(&c.btrfs, "btrfs", false, "make a btrfs store: roots are read-only subvolumes")
	cmd.Flags().StringVar(&c.from, "from", "", "with --btrfs: copy this directory tree as the first root")
	cmd.Flags().StringVar(&c.arch, "arch", "", "the board's architecture, which the first root's init must run on (amd64, arm64, armhf, ...; default: the trampoline's)")
	cmd.Flags().StringVar(&c.trampoline, "trampoline", "", "the init-overlay binary to install as DIR/"+InitName+" (default: the one beside this binary); on a build host for another architecture, name the device's")
	cmd.Flags().StringArrayVar(&c.trust, "trust", nil, "minisign public key the first image must be signed with (repeatable)")
	cmd.Flags().StringVar(&c.sig, "sig", "", "the first image's minisign signature (default: IMAGE.minisig)")
	cmd.Flags().BoolVar(&c.insecure, "insecure", false, "do not check the first image's signature (recorded, shown by status)")
	return cmd
}

func (c *storeInitCmd) run(cmd *cobra.Command, e *env, args []string) error {
	top, err := filepath.Abs(args[0])
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if err := checkInitTarget(top); err != nil {
		return errorf(cmd, "%w", err)
	}
	if real, err := filepath.EvalSymlinks(top); err == nil {
		if ms, err := mounts.Read(); err == nil {
			if w := notMountPoint(real, ms); w != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
		}
	}
	if c.machines, err = c.boardMachines(e); err != nil {
		return errorf(cmd, "%w", err)
	}
	if c.btrfs {
		return c.runBtrfs(cmd, e, top)
	}
	switch {
	case c.from != "":
		return errorf(cmd, "--from makes a subvolume: it needs --btrfs (a squashfs store takes --image)")
	case c.image == "":
		return errorf(cmd, "give --image IMAGE (a squashfs root image), or --btrfs for a btrfs store")
	}
	info, err := checkImage(c.image, c.machines)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	// Checked here on the source, to refuse before anything is written,
	// and again on the staged copy (admit), which is what boots.
	if err := c.checkCarriesKeys(info.Meta); err != nil {
		return errorf(cmd, "%w", err)
	}
	check, err := c.planCheck(e)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	var img staged
	err = e.initStore(cmd, c, top, squash.Format{}, func(st *trampoline.Store) error {
		var err error
		img, err = c.stageRoot(cmd, e, st, check)
		return err
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "store ready in %s: committed root %s/root%s (sha256 %s, %s; %s), trampoline /%s (from %s)\n",
		top, trampoline.SlotDir, squash.ImageSuffix, img.sha256(), overlay.HumanBytes(uint64(img.size)), check.describe(), InitName, c.installed)
	printBootHint(out, top, "")
	return nil
}

// boardMachines is what the store's board runs, which its first root's
// init is checked against: --arch, else the machine of the trampoline that
// will be installed (the board runs it, so it runs the board's
// architecture, also when a build host of another one prepares the card),
// else this system's.
func (c *storeInitCmd) boardMachines(e *env) ([]uint16, error) {
	if c.arch != "" {
		return e.targetMachines(c.arch)
	}
	self, err := e.executable()
	if err != nil {
		return e.machines, nil
	}
	src, found, err := findTrampoline(c.trampoline, self, e.trampolineDirs, os.Stat, isELFFile)
	if err != nil {
		return nil, err
	}
	if !found {
		src = self
	}
	if ms := elfMachines(src); ms != nil {
		return ms, nil
	}
	return e.machines, nil
}

// checkInitTarget refuses a DIR that is missing, not a directory, or already
// a store.
func checkInitTarget(top string) error {
	st, err := os.Stat(top)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: mount the store partition there first (or mkdir it)", top)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", top)
	case trampoline.IsStore(top):
		return fmt.Errorf("%s is already a store: use 'overlayupd apply --store %s IMAGE' to put a new root in it", top, top)
	}
	// Why: init writes into sbin/ and roots/; a link there (media from
	// elsewhere) would make it write outside DIR.
	for _, d := range []string{"sbin", trampoline.SlotDir} {
		if fi, err := os.Lstat(filepath.Join(top, d)); err == nil && !fi.IsDir() {
			return fmt.Errorf("%s/%s is a %s, not a directory: remove it and run init again", top, d, fsmode.Kind(fi.Mode()))
		}
	}
	return nil
}

// notMountPoint says, when dir is not where a filesystem is mounted, which
// one the store goes to ("" when dir is a mount point). Why: store init
// is meant for the store partition, mounted at DIR; a typo or a partition
// that did not mount puts the store, images and all, on the filesystem
// that holds DIR (often this system's root), with no other sign.
func notMountPoint(dir string, ms []mounts.Mount) string {
	on, ok := mounts.Of(ms, dir)
	if !ok || on.MountPoint == dir {
		return ""
	}
	return fmt.Sprintf("%s is not a mount point: the store goes onto the filesystem mounted at %s (%s, %s); if it should be on its own partition, mount that on %s first", dir, on.MountPoint, on.Source, on.FSType, dir)
}

// initStore lays out the store of format f at top, with makeRoot making
// the first committed root (the protocol's init event). Order matters for
// crashes: everything else is in place and fsynced before the marker is
// written, so the marker's presence means a complete store.
func (e *env) initStore(cmd *cobra.Command, c *storeInitCmd, top string, f trampoline.Format, makeRoot func(*trampoline.Store) error) (err error) {
	defer func() {
		// (An image that does not fit says so itself: squash.ErrNoSpace.)
		if (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)) && !errors.Is(err, squash.ErrNoSpace) {
			err = fmt.Errorf("%w\nthe filesystem of %s is full: a store needs room for the trampoline and its first root with the root's tree; free space there or use a larger partition, then run store init again (the store is not made until its marker is written, last)", err, top)
		}
	}()
	st := trampoline.Open(top, f)
	if err := os.MkdirAll(st.SlotDir, 0o755); err != nil {
		return err
	}
	lock, err := trampoline.LockStore(st.SlotDir, e.args)
	if err != nil {
		return err
	}
	defer lock.Close()
	if c.installed, err = e.installTrampoline(filepath.Join(top, InitName), c.trampoline, cmd.ErrOrStderr()); err != nil {
		return err
	}
	// A leftover key of an init that was cut off is kept: it signed nothing
	// that matters, and replacing it gains nothing.
	if _, err := trust.LoadDeviceKey(filepath.Join(top, KeysDir)); errors.Is(err, trust.ErrNoDeviceKey) {
		if _, err := trust.GenerateDeviceKey(filepath.Join(top, KeysDir)); err != nil {
			return fmt.Errorf("device key: %w", err)
		}
	} else if err != nil {
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", strings.TrimPrefix(overlay.OverlayDir, "/")} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			return err
		}
	}
	if err := makeRoot(st); err != nil {
		return err
	}
	// Why: the directories made above must be durable before the marker says
	// the store is complete.
	if err := atomicfile.SyncDir(top); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(top, trampoline.MarkerFile), trampoline.MarkerText(f.Name()), 0o644)
}

// planCheck decides how the first image's signature is checked: against
// the --trust keys, else the running system's; --trust needs an image.
func (c *storeInitCmd) planCheck(e *env) (*sigCheck, error) {
	var keys trust.Keys
	for _, p := range c.trust {
		k, err := trust.ReadKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("--trust: %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 && c.image == "" {
		return nil, errors.New("--trust checks the first image's signature: give --image IMAGE (signed with that key)")
	}
	if len(keys) == 0 && c.image != "" {
		var err error
		if keys, err = e.trustedKeys(); err != nil {
			return nil, err
		}
	}
	if c.image == "" {
		return &sigCheck{}, nil
	}
	return planSigCheck(keys, c.image, c.sig, c.insecure)
}

// checkCarriesKeys refuses, under --trust, a first image that trusts no
// key itself (or a key file in it that is not one): once it boots, apply
// would check nothing, or refuse everything.
func (c *storeInitCmd) checkCarriesKeys(m squash.Meta) error {
	if len(c.trust) == 0 {
		return nil
	}
	if len(m.TrustedKeys) == 0 {
		return fmt.Errorf("the image trusts no key (no /%s/*.pub in it): once it boots, nothing would be checked; put the public keys its successors are signed with into the image", trust.TrustedDir)
	}
	for name, b := range m.TrustedKeys {
		if _, err := trust.ParseKey(b, "/"+trust.TrustedDir+"/"+name+" in the image"); err != nil {
			return err
		}
	}
	return nil
}

// stageRoot copies the image into the slot directory and makes it the
// committed root (the protocol's init event), refusing to replace one (a
// store cut off after this step).
func (c *storeInitCmd) stageRoot(cmd *cobra.Command, e *env, st *trampoline.Store, check *sigCheck) (staged, error) {
	f, err := os.Open(c.image)
	if err != nil {
		return staged{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return staged{}, err
	}
	progress, done := e.progress(cmd, imageTotal(f, fi.Size()), false)
	defer done()
	img, err := stageImage(cmd.Context(), f, fi.Size(), st.SlotDir, c.machines, progress, check)
	if err != nil {
		return staged{}, err
	}
	if e.kernelCheck != nil {
		if err := e.kernelCheck(img, c.image, c.machines, cmd.ErrOrStderr()); err != nil {
			discard(img.tmp)
			return staged{}, err
		}
	}
	if err := c.admit(e, st, img.tmp, img, check); err != nil {
		discard(img.tmp)
		return staged{}, err
	}
	if _, err := st.Init(img.tmp); err != nil {
		discard(img.tmp)
		if errors.Is(err, trampoline.ErrHasRoot) {
			return staged{}, fmt.Errorf("%s has a root from an earlier init that did not finish: remove %s/ and run init again", st.Top, st.SlotDir)
		}
		return staged{}, err
	}
	return img, nil
}

// checkByKernel has the kernel mount the staged first root (in a private
// mount namespace) and read its tree and init, where it can (root; the
// image was checked by the in-process reader, not by a mount already).
// Why for the first root only: it is the store's only root, with nothing
// to fall back to when it does not mount (the trampoline then boots classic
// mode on a partition with no /sbin/init). The in-process reader does not
// read every table as the kernel does: a damaged id or export table, or a
// bytes_used off by one, passed it and failed the kernel's mount. An
// apply's image boots as a trial first, and falls back when it does not
// mount.
//
// Where the mount itself cannot be made (a container without loop devices
// or mount rights), the image is not at fault: store init says so and goes
// on with the in-process reader's word alone.
func checkByKernel(img staged, name string, machines []uint16, warn io.Writer) error {
	if os.Geteuid() != 0 || img.info.CheckedBy == "mount" {
		return nil
	}
	_, err := validateByMount(img.tmp, machines)
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), img.tmp, name)
	for _, fault := range []error{squash.ErrCorrupt, squash.ErrNoInit, squash.ErrInitNotExecutable, squash.ErrInitNotRunnable,
		squash.ErrInitWrongArch, squash.ErrDanglingSymlink, squash.ErrSymlinkLoop} {
		if errors.Is(err, fault) {
			return imageError(retext{"the kernel cannot use " + msg +
				" (store init has the kernel mount its first root: the store has no other to fall back to)", err})
		}
	}
	fmt.Fprintf(warn, "overlayupd: warning: the image could not be checked by a kernel mount here (%s); it was checked by the in-process reader only\n", msg)
	return nil
}

// validateByMount is squash.ValidateByMount; a variable for tests.
var validateByMount = squash.ValidateByMount

// admit checks that the first root carries keys (under --trust) and
// records it, signed with the new device key.
func (c *storeInitCmd) admit(e *env, st *trampoline.Store, entry string, img staged, check *sigCheck) error {
	if err := c.checkCarriesKeys(img.info.Meta); err != nil {
		return err
	}
	rec := trust.Record{Made: "store init", SHA256: img.sha256(), Version: trust.ImageVersion(img.info.Meta.OSRelease, img.info.Meta.VersionFile)}
	check.record(&rec)
	return e.recordRoot(st, entry, rec, true)
}

// printBootHint says how to boot the store at top: the kernel command line,
// and the install command that writes it.
func printBootHint(out io.Writer, top, extra string) {
	root, dev := rootDevice(top)
	if extra != "" {
		extra = " " + extra
	}
	fmt.Fprintf(out, "boot it with the kernel command line: root=%s%s rootwait ro init=/sbin/init-overlay\n", root, extra)
	if dev == "" {
		dev = "DEV"
	}
	fmt.Fprintf(out, "'overlayupd install --boot-dir BOOT --store-device %s' writes that into the boot configuration on the boot partition BOOT (Raspberry Pi: BOOT/firmware/cmdline.txt, else BOOT/cmdline.txt); 'overlayupd uninstall --boot-dir BOOT --restore' undoes it\n", dev)
}

// rootDevice names the device to pass as root=: the PARTUUID of the
// partition mounted at top, from its disk's partition table (udev's
// /dev/disk/by-partuuid when that fails), else the device itself. dev is
// the partition's node, "" when top is not a partition's mount point.
func rootDevice(top string) (root, dev string) {
	const unknown = "<the store partition, e.g. PARTUUID=...>"
	ms, err := mounts.Read()
	if err != nil {
		return unknown, ""
	}
	m, ok := remount.Of(ms, top)
	if !ok || filepath.Clean(m.MountPoint) != filepath.Clean(top) || !strings.HasPrefix(m.Source, "/dev/") {
		return unknown, ""
	}
	if info, err := blockdev.Resolve(m.Source); err == nil {
		return info.Root(), m.Source
	}
	links, _ := filepath.Glob("/dev/disk/by-partuuid/*")
	for _, l := range links {
		if t, err := filepath.EvalSymlinks(l); err == nil && t == m.Source {
			return "PARTUUID=" + filepath.Base(l), m.Source
		}
	}
	return m.Source, m.Source
}
