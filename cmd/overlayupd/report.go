package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// report is what a command that changes state (commit, rollback, gc,
// mark-good, enable, disable, lock, unlock) says it did: one line of words
// by default, this object with --json. Store commands add the store's
// status after the change, the "store" object of status --json; the
// others the overlay's, its top-level fields.
type report struct {
	Command string `json:"command"`
	// Changed: the command changed something (false: there was nothing to
	// do, e.g. commit --if-trial outside a trial, gc with nothing to remove).
	Changed bool   `json:"changed"`
	Message string `json:"message"`
	// Actions are the slot protocol's steps it ran, in order, as status's
	// next_boot.actions names them ("rename A -> B"); empty when none.
	Actions   []string        `json:"actions"`
	Removed   []string        `json:"removed,omitempty"`   // gc: the entries it deleted
	Committed string          `json:"committed,omitempty"` // commit: the committed root's entry now
	Trial     string          `json:"trial,omitempty"`     // commit: the trial entry it committed
	Previous  string          `json:"previous,omitempty"`  // commit: the root rollback goes back to
	Store     *storeStatus    `json:"store,omitempty"`
	Overlay   *overlay.Status `json:"overlay,omitempty"`
}

// withActions sets r's actions to t's steps.
func (r report) withActions(t trampoline.Transition) report {
	for _, op := range t.Ops {
		r.Actions = append(r.Actions, op.String())
	}
	r.Changed = r.Changed || len(t.Ops) > 0
	return r
}

// addJSONFlag gives cmd --json.
func addJSONFlag(cmd *cobra.Command, asJSON *bool) {
	cmd.Flags().BoolVar(asJSON, "json", false, "print the result as a JSON object (schema in the README), errors as {\"error\": ...}")
}

// print writes r: its message, or the object with --json. A store's status
// that cannot be read after the change is left out of the object, with a
// warning: the change itself is done.
func (r report) print(cmd *cobra.Command, asJSON bool, e *env, st *trampoline.Store) error {
	if !asJSON {
		fmt.Fprintln(cmd.OutOrStdout(), r.Message)
		return nil
	}
	r.Command = cmd.Name()
	if r.Actions == nil {
		r.Actions = []string{}
	}
	if st != nil {
		s, err := loadStoreStatus(e, st, false)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: the store's status after the change: %v\n", err)
		}
		r.Store = s
	}
	return writeJSON(cmd.OutOrStdout(), r)
}
