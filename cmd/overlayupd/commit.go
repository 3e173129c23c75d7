package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/trampoline"
)

type commitCmd struct {
	store         storeFlag
	force         bool
	healthDir     string
	healthTimeout time.Duration
	ifTrial       bool
	after         time.Duration
	json          bool
}

func newCommitCmd(e *env) *cobra.Command {
	c := &commitCmd{}
	cmd := &cobra.Command{
		Use:   "commit",
		Short: "Keep the trial this system booted: it becomes the committed root",
		Long: `Keep the root image this system is trying: it becomes the committed root, and
the root it replaces becomes the previous root (see 'rollback').

Only in a trial boot: otherwise it refuses, unless --force (which also commits
a staged image that has not booted yet). First it runs the health checks, the
executable files in --health-dir in lexical order, each with --health-timeout;
one that fails or times out refuses the commit. Checks get OVERLAYUPD_BOOTED
(the entry booted) in their environment.

The commit is a series of renames in the store whose first one is the commit
point: a power cut at any instant boots either the new root, committed, or
the old one with the trial reported as not committed.

--if-trial makes it safe to run on every boot (overlayupd-commit.service, the
/etc/init.d script): when this boot is not a trial it commits nothing and
exits 0; in a boot of the committed root it marks the boot good instead
(mark-good: the boot budget's count starts again). --after waits that long first (the system must stay up that long), then
checks again that the trial is still running, then commits. A trial has a
deadline to commit (apply --deadline, overlayupd.trial_deadline=, default
10 minutes) after which its watchdog resets the board: keep --after and the
health checks well inside it.`,
		Example: "  overlayupd commit\n  overlayupd commit --health-timeout 2m\n  overlayupd commit --if-trial --after 60s",
		Args:    cobra.NoArgs,
		PreRunE: e.needRoot,
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.run(cmd, e) },
	}
	c.store.register(cmd)
	cmd.Flags().BoolVar(&c.force, "force", false, "commit even when not booted into the trial")
	cmd.Flags().StringVar(&c.healthDir, "health-dir", DefaultHealthDir, "directory of health checks to pass before committing")
	cmd.Flags().DurationVar(&c.healthTimeout, "health-timeout", 60*time.Second, "time each health check may take")
	cmd.Flags().BoolVar(&c.ifTrial, "if-trial", false, "do nothing (exit 0) when this boot is not a trial: for a unit that runs on every boot")
	cmd.Flags().DurationVar(&c.after, "after", 0, "wait this long first (e.g. 60s): the trial must stay up that long")
	addJSONFlag(cmd, &c.json)
	return cmd
}

func (c *commitCmd) run(cmd *cobra.Command, e *env) error {
	if c.ifTrial && c.force {
		return errorf(cmd, "--if-trial and --force contradict each other: --force commits what is not booted")
	}
	if c.after < 0 {
		return errorf(cmd, "--after %s: give a duration of 0 or more", c.after)
	}
	if c.healthTimeout <= 0 {
		return errorf(cmd, "--health-timeout %s: give a duration above 0 (each health check gets that long; there is no 'no limit')", c.healthTimeout)
	}
	if c.ifTrial && c.store.top == "" {
		if _, err := boot.DefaultStore(); err != nil {
			return report{Message: "not booted from a store: no trial, nothing to commit"}.print(cmd, c.json, e, nil)
		}
	}
	store, err := c.store.open()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if c.ifTrial {
		if trial, msg := c.isTrial(e, store); !trial && !c.committedBoot(e, store) {
			return report{Message: msg}.print(cmd, c.json, e, store)
		}
	}
	if c.after > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "waiting %s before the commit\n", c.after)
		select {
		case <-time.After(c.after):
		case <-cmd.Context().Done():
			return errorf(cmd, "interrupted while waiting: nothing committed")
		}
	}
	if c.ifTrial {
		if trial, msg := c.isTrial(e, store); !trial {
			if c.committedBoot(e, store) {
				// A committed boot that got this far booted well: its
				// boot budget starts again (mark-good).
				return c.markGood(cmd, e, store, msg)
			}
			return report{Message: msg}.print(cmd, c.json, e, store)
		}
	}
	booted, err := e.booted(store)
	if err != nil && !c.force {
		return errorf(cmd, "which image is booted: %w (commit --force commits the trial regardless)", err)
	}
	// Refuse before the health checks run when the protocol would refuse.
	// Why outside the lock: the checks may take minutes, and the store stays
	// read-only (power-cut safe) meanwhile; Commit checks the state again
	// under the lock, so a rollback in between makes it refuse.
	state, err := store.State()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	t, err := trampoline.Next(state, trampoline.Event{Kind: trampoline.EvCommit, Booted: booted, Force: c.force})
	if err != nil {
		return errorf(cmd, "%w", commitRefusal(err))
	}
	trial := renamedTo(t, trampoline.EntryName(trampoline.RoleCommitting, 0, state.Suffix))
	if trial != "" { // nothing to check when only an interrupted commit is finished
		n, err := runHealthChecks(cmd.Context(), c.healthDir, c.healthTimeout, []string{"OVERLAYUPD_BOOTED=" + booted})
		if err != nil {
			return errorf(cmd, "%w\nnot committed: fix what the check reports and run commit again, or reboot to go back", err)
		}
		if n == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "no health checks in %s\n", c.healthDir)
		}
	}
	cleared, layer := false, false
	var tr trampoline.Transition
	err = e.withStore(store, func(st *trampoline.Store) error {
		var err error
		tr, err = st.Commit(booted, c.force)
		if err != nil {
			return err
		}
		layer = renamedTo(tr, trampoline.LayerFold) != ""
		if isBtrfs(st) {
			// What persist folded from the persistent layer is in the root
			// now: its next boot empties the layer.
			info, err := snapshot.GetInfo(filepath.Join(st.SlotDir, trampoline.EntryName(trampoline.RoleCommitted, 0, "")))
			if err != nil {
				return err
			}
			cleared, err = st.AfterCommit(info.UUID)
			return err
		}
		return nil
	})
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	root := trampoline.EntryName(trampoline.RoleCommitted, 0, store.Format.Suffix())
	prev := trampoline.EntryName(trampoline.RolePrevious, 0, store.Format.Suffix())
	r := report{Committed: root, Trial: trial, Previous: prev}.withActions(tr)
	if trial == "" {
		trial = "an interrupted commit, now finished"
	}
	r.Message = fmt.Sprintf("committed %s (was the trial %s); the previous root is %s, 'overlayupd rollback' goes back to it", root, trial, prev)
	if layer {
		r.Message += fmt.Sprintf("\nwhat the trial wrote (%s/%s) joins the persistent layer at the next boot", trampoline.SlotDir, trampoline.LayerFold)
	}
	if cleared {
		r.Message += "\nthe root holds what persist folded from the persistent layer: the next boot starts the layer empty (the old one is kept as its -bak)"
	}
	return r.print(cmd, c.json, e, store)
}

// commitRefusal explains a refusal of the protocol in the user's terms.
func commitRefusal(err error) error {
	switch {
	case errors.Is(err, trampoline.ErrNotInTrial):
		return fmt.Errorf("%w\nthis system is not running the trial, so its health says nothing about it", err)
	case errors.Is(err, trampoline.ErrNothingToDo):
		return fmt.Errorf("%w: apply an image, reboot into it, then commit", err)
	}
	return err
}

// renamedTo returns the entry t renames to name ("" if none).
func renamedTo(t trampoline.Transition, name string) string {
	for _, op := range t.Ops {
		if op.Kind == trampoline.OpRename && op.To == name {
			return op.From
		}
	}
	return ""
}

// isTrial reports whether this system runs a trial of store, and if not,
// the line --if-trial prints.
func (c *commitCmd) isTrial(e *env, store *trampoline.Store) (bool, string) {
	booted, err := e.booted(store)
	if err != nil {
		return false, fmt.Sprintf("which image is booted: %v; not committing", err)
	}
	if booted == "" {
		return false, "not booted from an image of this store: no trial, nothing to commit"
	}
	if e := trampoline.ParseName(booted, store.Format.Suffix()); e.Role != trampoline.RoleTrying {
		return false, fmt.Sprintf("booted %s (%s), not a trial: nothing to commit", booted, e.Role)
	}
	return true, ""
}

// committedBoot reports whether this system runs the committed root of store.
func (c *commitCmd) committedBoot(e *env, store *trampoline.Store) bool {
	booted, err := e.booted(store)
	return err == nil && booted != "" && trampoline.ParseName(booted, store.Format.Suffix()).Role == trampoline.RoleCommitted
}

// markGood is mark-good for commit --if-trial in a committed boot; why is
// the line that says this boot is no trial.
func (c *commitCmd) markGood(cmd *cobra.Command, e *env, store *trampoline.Store, why string) error {
	var r report
	err := e.withStore(store, func(st *trampoline.Store) error {
		var err error
		r, err = (&markGoodCmd{}).run(e, st)
		return err
	})
	if err != nil {
		return errorf(cmd, "%s\nmark-good: %w", why, err)
	}
	r.Message = why + "\n" + r.Message
	return r.print(cmd, c.json, e, store)
}
