package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/trampoline"
)

type rollbackCmd struct {
	store storeFlag
	json  bool
}

func newRollbackCmd(e *env) *cobra.Command {
	c := &rollbackCmd{}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Go back: cancel the trial, or boot the previous root next",
		Long: `During a trial (or with an image staged), cancel it: the next boot runs the
committed root, and the trial is kept as root.failed for diagnosis. Otherwise
swap the committed and the previous root in one atomic rename, so the next
boot runs the previous root (run rollback again to undo).`,
		Example: "  overlayupd rollback && reboot",
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE:    e.storeCommand(&c.store, &c.json, c.run),
	}
	c.store.register(cmd)
	addJSONFlag(cmd, &c.json)
	return cmd
}

func (c *rollbackCmd) run(st *trampoline.Store) (report, error) {
	t, err := st.Rollback()
	if err != nil {
		return report{}, err
	}
	status, err := st.Status("")
	if err != nil {
		return report{}, err
	}
	r := report{Message: fmt.Sprintf("rolled back (%s)\n%s", strings.Join(describeOps(t), "; "), status.NextBoot.Summary)}
	return r.withActions(t), nil
}

// describeOps says in words what a transition did to the entries.
func describeOps(t trampoline.Transition) []string {
	var out []string
	for _, op := range t.Ops {
		switch op.Kind {
		case trampoline.OpRename:
			if strings.HasPrefix(op.To, trampoline.RemovePrefix) {
				continue // the removal that follows says it
			}
			out = append(out, op.From+" is now "+op.To)
		case trampoline.OpExchange:
			out = append(out, op.From+" and "+op.To+" swapped")
		case trampoline.OpRemove:
			if name, ok := strings.CutPrefix(op.From, trampoline.RemovePrefix); ok {
				out = append(out, "discarded "+name)
			} else {
				out = append(out, "removed "+op.From)
			}
		}
	}
	if len(out) == 0 {
		out = append(out, "nothing changed")
	}
	return out
}
