package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

// isBtrfs reports whether st is a btrfs store.
func isBtrfs(st *trampoline.Store) bool { return st.Format.Name() == (snapshot.Format{}).Name() }

// rootSource is where a new subvolume root comes from: an image file, a
// directory tree, or (neither) the running system's root.
type rootSource struct {
	image, from string
	machines    []uint16 // what the root's init must run on (nil: no check)
}

// makeSubvolRoot makes a sealed (read-only, durable) workspace in st's slot
// directory holding the root from src, checked as an image is (every entry
// readable, an executable /sbin/init). On any error nothing is left behind
// but what gc removes.
func makeSubvolRoot(cmd *cobra.Command, st *trampoline.Store, src rootSource) (ws *snapshot.Workspace, err error) {
	if !snapshot.Built {
		return nil, snapshot.ErrNotBuilt
	}
	progress, done := copyProgress(cmd.ErrOrStderr())
	defer done()
	switch {
	case src.image != "":
		ws, err = snapshot.NewWorkspace(st.SlotDir)
		if err == nil {
			err = squash.WithMounted(src.image, func(dir string) error { return snapshot.CopyTree(dir, ws.Path, progress) })
		}
	case src.from != "":
		ws, err = snapshot.NewWorkspace(st.SlotDir)
		if err == nil {
			err = snapshot.CopyTree(src.from, ws.Path, progress)
		}
	default:
		var root string
		if root, err = runningRoot(); err == nil {
			ws, err = snapshot.SnapshotWorkspace(st.SlotDir, root)
			if errors.Is(err, unix.EXDEV) {
				err = fmt.Errorf("the running root (%s) is not on the btrfs of %s: give --image or --from", root, st.Top)
			}
		}
	}
	if err == nil {
		_, err = squash.CheckRoot(ws.Path, src.machines)
	}
	if err == nil {
		err = ws.Seal()
	}
	if err != nil && ws != nil {
		if aerr := ws.Abort(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, err
	}
	return ws, err
}

// runningRoot is the subvolume this system runs: the overlay's lower layer
// when there is one, else "/".
func runningRoot() (string, error) {
	if ms, err := mounts.Read(); err == nil {
		if m, ok := mounts.Find(ms, overlay.RobaseDir); ok && m.FSType == "btrfs" {
			return overlay.RobaseDir, nil
		}
	}
	ok, err := snapshot.IsSubvolume("/")
	if err != nil || !ok {
		return "", fmt.Errorf("the running root is not a btrfs subvolume: give --image or --from")
	}
	return "/", nil
}

// copyProgress reports a tree copy's bytes on a terminal.
func copyProgress(w io.Writer) (func(int64), func()) {
	if !isTerminal(w) {
		return nil, func() {}
	}
	bar := &progressBar{w: w, total: -1}
	return bar.update, bar.finish
}

// makeFirstRoot makes the btrfs store's first root: the image unpacked
// (through a checked copy when its signature is checked), or --from's tree,
// or a snapshot of the running root.
func (c *storeInitCmd) makeFirstRoot(cmd *cobra.Command, st *trampoline.Store, info squash.Info, check *sigCheck) (*snapshot.Workspace, staged, error) {
	if c.image == "" {
		ws, err := makeSubvolRoot(cmd, st, rootSource{from: c.from, machines: c.machines})
		if err != nil {
			return nil, staged{}, err
		}
		m, err := squash.TreeMeta(ws.Path)
		if err != nil {
			return nil, staged{}, errors.Join(err, ws.Abort())
		}
		return ws, staged{info: squash.Info{Meta: m}}, nil
	}
	f, err := os.Open(c.image)
	if err != nil {
		return nil, staged{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, staged{}, err
	}
	img, ws, err := unpackImage(cmd, st, c.image, f, fi.Size(), info, check, c.machines, nil)
	return ws, img, err
}

// checkBtrfsTop refuses a DIR that is not the top level of a btrfs, or
// whose default subvolume is not the top level: the kernel would mount that
// subvolume instead of the store, and never find the trampoline.
func checkBtrfsTop(top string) error {
	id, err := snapshot.ID(top)
	if errors.Is(err, snapshot.ErrNotBtrfs) {
		return fmt.Errorf("%s is not on btrfs: make the store filesystem with mkfs.btrfs, or leave out --btrfs for a squashfs store", top)
	}
	if err != nil {
		return err
	}
	if ok, _ := snapshot.IsSubvolume(top); id != 5 || !ok {
		return fmt.Errorf("%s is subvolume %d of its btrfs, not the top level: mount the filesystem with -o subvolid=5 and give that directory", top, id)
	}
	def, err := snapshot.DefaultID(top)
	if err != nil {
		return err
	}
	if def != 5 {
		return fmt.Errorf("the default subvolume of %s is %d, not 5: the kernel would boot it instead of the store; run 'btrfs subvolume set-default 5 %s' (or boot with rootflags=subvolid=5)", top, def, top)
	}
	return nil
}

func (c *storeInitCmd) runBtrfs(cmd *cobra.Command, e *env, top string) error {
	if c.image != "" && c.from != "" {
		return errorf(cmd, "give --image or --from, not both")
	}
	if err := checkBtrfsTop(top); err != nil {
		return errorf(cmd, "%w", err)
	}
	var info squash.Info
	if c.image != "" {
		var err error
		if info, err = checkImage(c.image, c.machines); err != nil {
			return errorf(cmd, "%w", err)
		}
		if err := c.checkCarriesKeys(info.Meta); err != nil {
			return errorf(cmd, "%w", err)
		}
	}
	if c.from != "" {
		if fi, err := os.Stat(c.from); err != nil || !fi.IsDir() {
			return errorf(cmd, "--from %s: not a directory", c.from)
		}
	}
	check, err := c.planCheck(e)
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	var id uint64
	err = e.initStore(cmd, c, top, snapshot.Format{}, func(st *trampoline.Store) error {
		ws, img, err := c.makeFirstRoot(cmd, st, info, check)
		if err != nil {
			return err
		}
		if err := c.admit(e, st, ws.Path, img, check); err != nil {
			return errors.Join(err, ws.Abort())
		}
		if _, err := st.Init(ws.Path); err != nil {
			return errors.Join(err, ws.Abort())
		}
		id, _ = snapshot.ID(filepath.Join(st.SlotDir, trampoline.EntryName(trampoline.RoleCommitted, 0, "")))
		return nil
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "store ready in %s: committed root %s/root (read-only subvolume %d), trampoline /%s (from %s)\n", top, trampoline.SlotDir, id, InitName, c.installed)
	printBootHint(out, top, "rootfstype=btrfs rootflags=subvolid=5")
	return nil
}
