package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

type persistCmd struct {
	store    storeFlag
	deadline deadlineFlag
	tries    int
	reboot   bool
	upper    string
	insecure bool
}

func newPersistCmd(e *env) *cobra.Command {
	c := &persistCmd{}
	cmd := &cobra.Command{
		Use:   "persist",
		Short: "Fold the overlay's changes into a new root; the next boot tries it",
		Long: `Make what the overlay shows now the root, through the same trial as an update
(btrfs store only): the changes in the overlay's writable layer (tmpfs or
persistent) are folded into a snapshot of the root this system booted, which
is then made read-only and staged. The next boot tries it; 'overlayupd
commit' keeps it; a reboot without commit goes back to the old root, with
the layer untouched.

Deleted files (overlayfs whiteouts) are deleted, replaced directories
(opaque) replace, hard links, owners, modes, file capabilities and times are
kept; overlayfs's own attributes are not copied. A layer made with
redirect_dir or metacopy, or an aufs layer, is refused: part of it lives in
the lower layer. The layer must not change while persist reads it: stop
what writes there, or persist refuses.

In a trial boot the committed root's persistent layer (read-only below the
trial's own layer) is folded in first, then the trial's layer, so that the
new root holds what the overlay shows. A persistent layer is set aside only
after the commit of that root, at its next boot: it is moved to DIR-bak (as persistent-move does) and the root
boots with an empty layer. Nothing written there after persist read it is
lost: it is in DIR-bak. Until then the root boots with the layer as it is.

As with update, the new root is signed with the store's device key, and
when the system trusts keys the root it starts from must hold its own
signed record, or persist refuses unless --insecure.`,
		Example: "  overlayupd persist\n  overlayupd persist --reboot",
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTries(cmd, c.tries); err != nil {
				return err
			}
			return e.needRoot(cmd, args)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd, e) },
	}
	c.store.register(cmd)
	cmd.Flags().IntVar(&c.tries, "tries", 1, fmt.Sprintf("boots allowed without a commit before going back (1 to %d)", trampoline.MaxTries))
	cmd.Flags().BoolVar(&c.reboot, "reboot", false, "reboot into the new root once it is staged")
	cmd.Flags().BoolVar(&c.insecure, "insecure", false, "when keys are trusted, persist over a root whose signature record does not hold (recorded, shown by status)")
	cmd.Flags().StringVar(&c.upper, "upper", "", "the overlay's upper directory (default: this system's, "+overlay.RwdataDir+"/data)")
	c.deadline.register(cmd)
	return cmd
}

// stackedLayers lists the read-only layers the boot put between the
// overlay's upper directory and the root, lowest first: those of them
// that are mounted.
func stackedLayers() []string {
	ms, err := mounts.Read()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range []string{overlay.RwcommittedDir, overlay.ShadowtopDir} {
		if _, ok := mounts.Find(ms, d); ok {
			out = append(out, d)
		}
	}
	return out
}

func (c *persistCmd) run(cmd *cobra.Command, e *env) error {
	store, err := c.store.open()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if !isBtrfs(store) {
		return errorf(cmd, "persist needs a btrfs store (this one holds %s images): build a new image and 'overlayupd apply' it", store.Format.Name())
	}
	upper, persistent := c.upper, false
	var below []string // read-only layers between the upper and the root, lowest first
	if upper == "" {
		st, err := overlay.CurrentStatus()
		if err != nil {
			return errorf(cmd, "%w", err)
		}
		if !st.Active || st.UnionFS != "overlay" {
			return errorf(cmd, "no overlayfs overlay is active (union filesystem %q): there is nothing to persist", st.UnionFS)
		}
		upper, persistent = filepath.Join(overlay.RwdataDir, "data"), st.RWLayer == string(overlay.Persistent)
		// In a trial boot the overlay shows more than its upper: the
		// committed persistent layer below it, and the image's files
		// that overlayupd.shadow=image put on top of that.
		below = stackedLayers()
	}
	var staged string
	var stats snapshot.MergeStats
	err = e.withStore(store, func(st *trampoline.Store) error {
		src, err := e.updateSource(st)
		if err != nil {
			return err
		}
		keys, err := e.trustedKeys()
		if err != nil {
			return err
		}
		insecure, err := checkSource(st, src, keys, c.insecure)
		if err != nil {
			return err
		}
		ws, err := snapshot.SnapshotWorkspace(st.SlotDir, src)
		if err != nil {
			return err
		}
		ok := false
		defer func() {
			if !ok {
				_ = ws.Abort()
			}
		}()
		for _, l := range append(below, upper) {
			ms, err := snapshot.MergeUpper(l, ws.Path)
			if err != nil {
				return fmt.Errorf("%w; nothing staged", err)
			}
			stats.Written, stats.Removed = stats.Written+ms.Written, stats.Removed+ms.Removed
		}
		if staged, err = stageWorkspace(st, ws, trampoline.Trial{Tries: c.tries, Deadline: c.deadline.d}, "merged", e.machines, e.deviceRecord(st, "persist", src, keys, insecure)); err != nil {
			return err
		}
		ok = true
		e.markStagedFrom(cmd, st)
		if persistent {
			info, err := snapshot.GetInfo(filepath.Join(st.SlotDir, staged))
			if err != nil {
				return err
			}
			return st.NotePersist(info.UUID)
		}
		return nil
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "persisted the overlay's changes (%d written, %d removed) into %s: the next boot tries it; after it boots, run 'overlayupd commit' to keep it, or reboot to go back\n",
		stats.Written, stats.Removed, staged)
	if persistent {
		fmt.Fprintln(out, "the persistent layer starts empty at the first boot after that commit, not before (the old one is kept as its -bak)")
	}
	if c.reboot {
		fmt.Fprintln(cmd.ErrOrStderr(), "rebooting into the new root")
		return e.reboot()
	}
	return nil
}
