package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/keeper"
)

// deadlineFlag is --deadline of the commands that stage a trial: how long
// after its boot the trial has to commit before its watchdog lets the
// board reset. Unset, the kernel command line's overlayupd.trial_deadline=
// or the default applies at boot.
type deadlineFlag struct{ d time.Duration }

func (f *deadlineFlag) String() string {
	if f.d == 0 {
		return ""
	}
	return keeper.FormatDuration(f.d)
}

func (f *deadlineFlag) Set(s string) error {
	d, err := keeper.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < time.Second {
		return errors.New("give at least 1s; a trial needs time to boot")
	}
	f.d = d
	return nil
}

func (f *deadlineFlag) Type() string { return "duration" }

func (f *deadlineFlag) register(cmd *cobra.Command) {
	cmd.Flags().Var(f, "deadline", "the trial must commit within this long after its boot (e.g. 5m), or its watchdog resets the board (default: overlayupd.trial_deadline= on the kernel command line, else "+keeper.FormatDuration(keeper.DefaultDeadline)+")")
}
