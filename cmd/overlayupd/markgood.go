package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/trampoline"
)

type markGoodCmd struct {
	store storeFlag
	json  bool
}

func newMarkGoodCmd(e *env) *cobra.Command {
	c := &markGoodCmd{}
	cmd := &cobra.Command{
		Use:   "mark-good",
		Short: "Record that this boot of the committed root went well (its boot budget)",
		Long: `Every boot of the committed root counts itself before it mounts anything
(the file roots/boots-K on the store); after overlayupd.boot_budget boots in a
row without a good mark (default 3), the trampoline falls back to the
previous root. mark-good resets the count: run it once the system is up and
healthy, e.g. from overlayupd-commit.service or the init.d script that
'overlayupd install --auto-commit' installs. 'commit --if-trial' does the same
in a committed boot, and so does the trampoline's keeper once the system has
stayed up for overlayupd.good_after.

It is safe to run on every boot: with nothing to reset it changes nothing.
During a trial it does nothing either (a trial's own boots are its tries: run
'overlayupd commit' to keep it).`,
		Example: "  overlayupd mark-good",
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE:    e.storeCommand(&c.store, &c.json, func(st *trampoline.Store) (report, error) { return c.run(e, st) }),
	}
	c.store.register(cmd)
	addJSONFlag(cmd, &c.json)
	return cmd
}

func (c *markGoodCmd) run(e *env, st *trampoline.Store) (report, error) {
	state, err := st.State()
	if err != nil {
		return report{}, err
	}
	if booted, err := e.booted(st); err == nil && booted != "" {
		if r := trampoline.ParseName(booted, st.Format.Suffix()).Role; r == trampoline.RoleTrying {
			return report{Message: "this boot is a trial (" + booted + "): nothing to mark; 'overlayupd commit' keeps it"}, nil
		}
	}
	name, k, ok := state.BootCount()
	switch {
	case !ok:
		return report{Message: "no boot count in this store (no boot budget yet): nothing to mark"}, nil
	case k == 0:
		return report{Message: "already marked good (" + name + ")"}, nil
	}
	t, err := st.MarkGood()
	if err != nil {
		return report{}, err
	}
	r := report{Message: fmt.Sprintf("marked good: %d boot(s) without a good mark before this one are forgiven (%s is now %s)", k, name, trampoline.BootCountName(0))}
	return r.withActions(t), nil
}

// markStagedFrom marks this boot good when it is a boot of the committed
// root that has just staged an update (apply, update, persist): the root
// booted far enough to run the admin's update. Why: the boot budget counts
// boots without a good mark, and an update agent that stages and reboots
// within seconds of each boot (before the keeper's good_after) would
// otherwise spend the committed root's budget for it, one quick cycle at a
// time; a failed trial's fallback boot then counts one more, and a root
// that works would be demoted to root.prev. Call it with the store locked,
// after the stage. A failure is a warning: the update is staged.
func (e *env) markStagedFrom(cmd *cobra.Command, st *trampoline.Store) {
	booted, err := e.booted(st)
	if err != nil || booted == "" || trampoline.ParseName(booted, st.Format.Suffix()).Role != trampoline.RoleCommitted {
		return
	}
	state, err := st.State()
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: this boot of %s is not marked good: %v; 'overlayupd mark-good' does it\n", booted, err)
		return
	}
	if _, k, ok := state.BootCount(); !ok || k == 0 {
		return
	}
	if _, err := st.MarkGood(); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: this boot of %s is not marked good: %v; 'overlayupd mark-good' does it\n", booted, err)
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "this boot of %s is marked good: it staged an update (its boot budget starts again)\n", booted)
}
