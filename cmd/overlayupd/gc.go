package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/trampoline"
)

type gcCmd struct{ store storeFlag }

func newGCCmd() *cobra.Command {
	c := &gcCmd{}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the failed root and the leftovers of interrupted applies",
		Long: `Remove root.failed (the last trial that never committed, kept for diagnosis)
and the leftovers of interrupted work: .stage-* files of an apply that was cut
off, rm-* entries of a removal that was. The committed, previous, staged and
trying roots are never touched.`,
		Args:    cobra.NoArgs,
		PreRunE: needRoot,
		RunE:    c.run,
	}
	c.store.register(cmd)
	return cmd
}

func (c *gcCmd) run(cmd *cobra.Command, _ []string) error {
	top, err := c.store.resolve()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	var removed []string
	err = withStore(top, func(st *trampoline.Store) error {
		before, err := st.State()
		if err != nil {
			return err
		}
		if _, err := st.GC(); err != nil {
			return err
		}
		after, err := st.State()
		if err != nil {
			return err
		}
		for _, e := range before.Entries() {
			if !after.Has(e.Name) {
				removed = append(removed, e.Name)
			}
		}
		return nil
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if len(removed) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "nothing to remove")
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", strings.Join(removed, ", "))
	return nil
}
