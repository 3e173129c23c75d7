package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

type gcCmd struct {
	store  storeFlag
	json   bool
	booted func(*trampoline.Store) (string, error)
}

func newGCCmd(e *env) *cobra.Command {
	c := &gcCmd{booted: e.booted}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the failed root and the leftovers of interrupted applies",
		Long: `Remove root.failed (the last trial that never committed, kept for diagnosis)
with layer.failed (what that trial wrote; kept while this system is that
trial, rolled back and not rebooted yet), and the leftovers of interrupted work: .stage-* files of an apply that was cut
off, rm-* entries of a removal that was. The committed, previous, staged and
trying roots are never touched, nor the root this system runs.

On a btrfs store, gc then waits (up to two minutes) until btrfs has freed
the space of deleted subvolumes: it does that in the background, and only
while the store is writable.`,
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE:    e.storeCommand(&c.store, &c.json, c.run),
	}
	c.store.register(cmd)
	addJSONFlag(cmd, &c.json)
	return cmd
}

func (c *gcCmd) run(st *trampoline.Store) (report, error) {
	before, err := st.State()
	if err != nil {
		return report{}, err
	}
	booted, _ := c.booted(st)
	t, err := st.GCBooted(booted)
	if err != nil {
		return report{}, err
	}
	after, err := st.State()
	if err != nil {
		return report{}, err
	}
	var removed []string
	for _, e := range before.Entries() {
		if !after.Has(e.Name) {
			removed = append(removed, printable(e.Name))
		}
	}
	msg := "nothing to remove"
	if len(removed) > 0 {
		msg = "removed " + strings.Join(removed, ", ")
	}
	r := report{Removed: removed}.withActions(t)
	if isBtrfs(st) {
		// Why wait: btrfs frees a deleted subvolume's space in the
		// background, and only while the store is writable, which it is
		// only during a command. gc is what a user runs to get space back.
		n, err := snapshot.WaitCleaned(st.SlotDir, 2*time.Minute)
		if err != nil {
			r.Message = msg
			return r, err
		}
		if n > 0 {
			msg += fmt.Sprintf("; freed the space of %d deleted %s", n, plural(n, "subvolume", "subvolumes"))
			r.Changed = true
		}
	}
	r.Message = msg
	return r, nil
}
