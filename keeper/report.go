package keeper

import (
	"bytes"
	"fmt"
	"time"
)

// NoWatchdog is what status says of a trial that runs without a keeper.
const NoWatchdog = "no watchdog: a hang will not roll back"

// Report is what status says of the keeper (status --json "trial_watchdog").
type Report struct {
	Armed     bool   `json:"armed"`
	PID       int    `json:"pid,omitempty"`
	Device    string `json:"device,omitempty"`
	Identity  string `json:"identity,omitempty"`
	TimeoutS  int    `json:"timeout_s,omitempty"`  // absent: unknown
	DeadlineS int    `json:"deadline_s,omitempty"` // seconds after boot; 0 none
	LeftS     int    `json:"left_s,omitempty"`     // until the deadline
	Nowayout  bool   `json:"nowayout,omitempty"`
	Summary   string `json:"summary"`
}

// Describe reports a keeper (nil: none is running) at uptime; trial says
// whether the system runs a trial now.
func Describe(pid int, c *Config, uptime time.Duration, trial bool) *Report {
	if c == nil || c.WatchdogFD == 0 {
		if !trial {
			return nil
		}
		return &Report{Summary: NoWatchdog}
	}
	r := &Report{Armed: true, PID: pid, Device: c.Device, Identity: c.Identity, TimeoutS: ceilSeconds(c.Timeout), Nowayout: c.Nowayout}
	what := fmt.Sprintf("watchdog %q (%s, timeout %s)", c.Identity, c.Device, FormatTimeout(c.Timeout))
	switch {
	case !trial:
		r.Summary = what + " kept fed by the keeper: the trial is over and the watchdog cannot be stopped (nowayout)"
	case c.Deadline == 0:
		r.Summary = what + ": the trial has no deadline; a hang of the kernel resets the board"
	case uptime < c.Deadline:
		r.DeadlineS, r.LeftS = ceilSeconds(c.Deadline), ceilSeconds(c.Deadline-uptime)
		r.Summary = fmt.Sprintf("%s: the trial must commit within %s of boot (%s left), or the board resets and boots the committed root",
			what, FormatDuration(c.Deadline), FormatDuration(time.Duration(r.LeftS)*time.Second))
	default:
		r.DeadlineS = ceilSeconds(c.Deadline)
		r.Summary = fmt.Sprintf("%s: the trial's deadline (%s after boot) passed: the board resets %s unless it commits now",
			what, FormatDuration(c.Deadline), within(c.Timeout))
	}
	return r
}

// ParseProcCmdline reads a /proc/PID/cmdline: the keeper's config, or ok
// false when the process is not a keeper.
func ParseProcCmdline(b []byte) (Config, bool) {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return Config{}, false
	}
	var argv []string
	for _, a := range bytes.Split(b, []byte{0}) {
		argv = append(argv, string(a))
	}
	c, err := ParseArgs(argv)
	return c, err == nil
}
