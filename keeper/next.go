package keeper

import "time"

// Action is what the keeper does on a tick.
type Action int

// The actions.
const (
	Pet        Action = iota // feed the watchdog; the trial runs, within its deadline
	Starve                   // do not feed it: the deadline passed, let the board reset
	Disarm                   // the trial is over: magic close ('V'), stop the watchdog, exit
	PetForever               // the trial is over but nowayout: feed it from now on, for good
	Handover                 // the trial is over: leave the device running for systemd, exit
)

var actionNames = [...]string{"pet", "starve", "disarm", "pet-forever", "handover"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "action?"
	}
	return actionNames[a]
}

// Tick is what the keeper sees on one tick.
type Tick struct {
	Uptime    time.Duration // CLOCK_BOOTTIME
	TrialOver bool          // the trial entry left the slot directory
	// Systemd: a systemd PID 1 wants this device (RuntimeWatchdogSec is
	// set); looked at only once the trial is over.
	Systemd bool
}

// Next decides the keeper's action. A trial that commits after its
// deadline, before the reset, is still over: the keeper disarms.
func Next(c Config, t Tick) Action {
	switch {
	case t.TrialOver && t.Systemd:
		return Handover
	case t.TrialOver && c.Nowayout:
		return PetForever
	case t.TrialOver:
		return Disarm
	case c.Deadline > 0 && t.Uptime >= c.Deadline:
		return Starve
	}
	return Pet
}
