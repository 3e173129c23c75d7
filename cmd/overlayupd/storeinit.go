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
	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// storeFormat is the store layout version written into the marker.
const storeFormat = 1

// InitName is where the store holds the trampoline the kernel runs.
const InitName = "sbin/init-overlay"

// executable is this binary; a variable so tests copy a small file.
var executable = os.Executable

type storeInitCmd struct{ image string }

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage root image stores",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newStoreInitCmd())
	return cmd
}

func newStoreInitCmd() *cobra.Command {
	c := &storeInitCmd{}
	cmd := &cobra.Command{
		Use:   "init DIR --image IMAGE",
		Short: "Make DIR a bootable store holding IMAGE as its committed root",
		Long: `Make DIR (e.g. the mounted store partition of an SD card, on a build host) a
bootable store: this binary as DIR/` + InitName + `, the mount points /dev,
/proc, /sys and /overlay, and IMAGE, validated as apply validates it, as the
committed root DIR/` + trampoline.SlotDir + `/root.sqsh.

The marker file DIR/` + trampoline.MarkerFile + ` is written last, so a store
whose initialisation was cut off is never taken for one: run init again.
A directory that already is a store is refused: use 'overlayupd apply --store'.`,
		Example: "  overlayupd store init /media/$USER/store --image root.sqsh",
		Args:    cobra.ExactArgs(1),
		PreRunE: needRoot,
		RunE:    c.run,
	}
	cmd.Flags().StringVar(&c.image, "image", "", "squashfs image of the first committed root (required)")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

func (c *storeInitCmd) run(cmd *cobra.Command, args []string) error {
	top, err := filepath.Abs(args[0])
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if err := checkInitTarget(top); err != nil {
		return errorf(cmd, "%w", err)
	}
	if _, err := checkImage(c.image); err != nil {
		return errorf(cmd, "%w", err)
	}
	img, err := c.initStore(cmd, top)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "store ready in %s: committed root %s/root%s (sha256 %s, %s), trampoline /%s\n",
		top, trampoline.SlotDir, trampoline.ImageSuffix, img.sha256(), overlay.HumanBytes(uint64(img.size)), InitName)
	fmt.Fprintf(out, "boot it with the kernel command line: root=%s ro init=/sbin/init-overlay\n", rootDevice(top))
	fmt.Fprintln(out, "'overlayupd install --boot-dir BOOT' writes 'ro init=/sbin/init-overlay' into the boot configuration on the boot partition BOOT; root= must name the store partition")
	return nil
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
	return nil
}

// initStore lays out the store. Order matters for crashes: everything else
// is in place and fsynced before the marker is written, so the marker's
// presence means a complete store.
func (c *storeInitCmd) initStore(cmd *cobra.Command, top string) (staged, error) {
	slots := filepath.Join(top, trampoline.SlotDir)
	if err := os.MkdirAll(slots, 0o755); err != nil {
		return staged{}, err
	}
	lock, err := trampoline.LockStore(slots, os.Args)
	if err != nil {
		return staged{}, err
	}
	defer lock.Close()
	if err := installSelf(filepath.Join(top, InitName)); err != nil {
		return staged{}, err
	}
	for _, d := range []string{"dev", "proc", "sys", strings.TrimPrefix(overlay.OverlayDir, "/")} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			return staged{}, err
		}
	}
	img, err := c.stageRoot(cmd, slots)
	if err != nil {
		return staged{}, err
	}
	// Why: the directories made above must be durable before the marker says
	// the store is complete.
	if err := atomicfile.SyncDir(top); err != nil {
		return staged{}, err
	}
	marker := fmt.Sprintf("overlayupd store, format %d\nroots in %s/, trampoline /%s; see 'overlayupd status --store DIR'\n",
		storeFormat, trampoline.SlotDir, InitName)
	return img, atomicfile.WriteFile(filepath.Join(top, trampoline.MarkerFile), []byte(marker), 0o644)
}

// stageRoot copies the image into the slot directory and renames it to the
// committed root, refusing to replace one (a store cut off after this step).
func (c *storeInitCmd) stageRoot(cmd *cobra.Command, slots string) (staged, error) {
	f, err := os.Open(c.image)
	if err != nil {
		return staged{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return staged{}, err
	}
	var progress func(int64)
	if errw := cmd.ErrOrStderr(); isTerminal(errw) {
		bar := &progressBar{w: errw, total: fi.Size()}
		defer bar.finish()
		progress = bar.update
	}
	img, err := stageImage(cmd.Context(), f, fi.Size(), slots, progress)
	if err != nil {
		return staged{}, err
	}
	root := filepath.Join(slots, trampoline.EntryName(trampoline.RoleCommitted, 0, trampoline.ImageSuffix))
	if err := unix.Renameat2(unix.AT_FDCWD, img.tmp, unix.AT_FDCWD, root, unix.RENAME_NOREPLACE); err != nil {
		discard(img.tmp)
		if errors.Is(err, unix.EEXIST) {
			return staged{}, fmt.Errorf("%s exists from an earlier init that did not finish: remove it and run init again", root)
		}
		return staged{}, fmt.Errorf("rename %s to %s: %w", img.tmp, root, err)
	}
	return img, atomicfile.SyncDir(slots)
}

// installSelf copies this binary to dst, mode 0755, atomically: temp file,
// fsync, rename, fsync of the directory.
func installSelf(dst string) (err error) {
	self, err := executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, src); err != nil {
		return fmt.Errorf("copy %s to %s: %w", self, tmp.Name(), err)
	}
	if err = tmp.Chmod(0o755); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

// rootDevice names the device to pass as root=: the source of the mount that
// is top, as a PARTUUID when /dev/disk/by-partuuid knows it (device names on
// a build host are not those of the device), else a placeholder.
func rootDevice(top string) string {
	const unknown = "<the store partition, e.g. PARTUUID=...>"
	ms, err := mounts.Read()
	if err != nil {
		return unknown
	}
	m, ok := mountOf(ms, top)
	if !ok || filepath.Clean(m.MountPoint) != filepath.Clean(top) || !strings.HasPrefix(m.Source, "/dev/") {
		return unknown
	}
	links, _ := filepath.Glob("/dev/disk/by-partuuid/*")
	for _, l := range links {
		if t, err := filepath.EvalSymlinks(l); err == nil && t == m.Source {
			return "PARTUUID=" + filepath.Base(l)
		}
	}
	return m.Source
}
