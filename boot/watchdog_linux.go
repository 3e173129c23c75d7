package boot

import (
	"path/filepath"

	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// The trial watchdog's hook into the boot path (package keeper does the
// work). Only a trial plan arms it: a committed or classic boot opens no
// device and starts no process. It runs after the try is consumed (the
// rename is durable) and before the trial is mounted, so a hang while
// mounting is covered too; if the trial then fails to mount, the fallback
// renames it to root.failed and the keeper, seeing it gone, disarms.

// armTrial starts the keeper for plan when it boots a trial.
func armTrial(log *overlay.Log, s *trampoline.Store, plan trampoline.BootPlan, cmdline string) {
	if !plan.Trial || plan.Boot.Name == "" {
		return
	}
	staged, has, err := s.TrialDeadline()
	if err != nil {
		log.Warnf("watchdog: %s: %v; using the command line's deadline or the default", filepath.Join(s.SlotDir, trampoline.TrialDeadlineFile), err)
	}
	keeper.Arm(keeper.TrialInput{
		Cmdline: string(cmdline), Staged: staged, HasStaged: has,
		SlotDir: s.SlotDir, Trial: plan.Boot.Name,
	}, log.Infof, log.Warnf)
}

// lastBoot tells the protocol whether the watchdog reset the board; the
// store asks only when a trial is in progress.
func lastBoot() trampoline.LastBoot {
	return trampoline.LastBoot{WatchdogReset: keeper.CardReset()}
}
