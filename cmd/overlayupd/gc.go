package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/trampoline"
)

type gcCmd struct{ store storeFlag }

func newGCCmd(e *env) *cobra.Command {
	c := &gcCmd{}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the failed root and the leftovers of interrupted applies",
		Long: `Remove root.failed (the last trial that never committed, kept for diagnosis)
and the leftovers of interrupted work: .stage-* files of an apply that was cut
off, rm-* entries of a removal that was. The committed, previous, staged and
trying roots are never touched.`,
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE:    e.storeCommand(&c.store, c.run),
	}
	c.store.register(cmd)
	return cmd
}

func (c *gcCmd) run(st *trampoline.Store) (string, error) {
	before, err := st.State()
	if err != nil {
		return "", err
	}
	if _, err := st.GC(); err != nil {
		return "", err
	}
	after, err := st.State()
	if err != nil {
		return "", err
	}
	var removed []string
	for _, e := range before.Entries() {
		if !after.Has(e.Name) {
			removed = append(removed, e.Name)
		}
	}
	if len(removed) == 0 {
		return "nothing to remove", nil
	}
	return "removed " + strings.Join(removed, ", "), nil
}
