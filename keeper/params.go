package keeper

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// Kernel command line keys.
const (
	KeyTimeout  = "overlayupd.wdt_timeout"    // the watchdog timeout: 30, 30s, 2m
	KeyDeadline = "overlayupd.trial_deadline" // how long a trial has to commit: 10m, 600, off
	KeyDevice   = "overlayupd.wdt_device"     // the watchdog device, or off
)

// Defaults.
const (
	// DefaultDeadline is a trial's time to commit when nothing else says.
	DefaultDeadline = 10 * time.Minute
	// DefaultTimeout caps the timeout chosen when overlayupd.wdt_timeout=
	// is not set: the device's maximum, but no more than this (an
	// i6300ESB allows 34 minutes, softdog 18 hours: a hung board would
	// wait that long).
	DefaultTimeout = 60 * time.Second
	// MaxDuration bounds every duration read from the command line or a
	// flag, so that arithmetic on them never overflows.
	MaxDuration = 30 * 24 * time.Hour
)

// Params are the command line's settings of the trial watchdog.
type Params struct {
	Timeout  time.Duration // 0: not set, ChooseTimeout picks
	Deadline time.Duration // valid only when HasDeadline; 0 means none (off)
	// HasDeadline: overlayupd.trial_deadline= was given and valid.
	HasDeadline bool
	// Device is overlayupd.wdt_device=: a /dev path to use instead of
	// DevicePaths; Off: no watchdog at all (another program owns it, or a
	// test runs the PID-1 path in a namespace that sees the host's /dev).
	Device string
	Off    bool
}

// ParseParams reads the watchdog keys of a kernel command line. A bad
// value is left out with a warning that says what was used instead.
func ParseParams(cmdline string) (Params, []string) {
	var p Params
	var warn []string
	ps := kcmdline.Kernel(cmdline)
	if v, ok := kcmdline.Lookup(ps, KeyTimeout); ok {
		d, err := ParseDuration(v)
		switch {
		case err != nil:
			warn = append(warn, fmt.Sprintf("%s=%s: %v; ignored, the timeout is chosen from the device", KeyTimeout, v, err))
		case d == 0:
			warn = append(warn, fmt.Sprintf("%s=%s: a timeout of 0 would reset at once; ignored, the timeout is chosen from the device", KeyTimeout, v))
		default:
			p.Timeout = d
		}
	}
	if v, ok := kcmdline.Lookup(ps, KeyDevice); ok {
		switch {
		case v == "off" || v == "none":
			p.Off = true
		case strings.HasPrefix(v, "/dev/") && !strings.Contains(v, ".."):
			p.Device = v
		default:
			warn = append(warn, fmt.Sprintf("%s=%s: give a /dev path or off; ignored", KeyDevice, v))
		}
	}
	if v, ok := kcmdline.Lookup(ps, KeyDeadline); ok {
		d, err := ParseDeadline(v)
		if err != nil {
			warn = append(warn, fmt.Sprintf("%s=%s: %v; ignored", KeyDeadline, v, err))
		} else {
			p.Deadline, p.HasDeadline = d, true
		}
	}
	return p, warn
}

// ParseDuration reads a duration as users write it on a command line: a
// number of seconds ("30") or a Go duration ("30s", "10m", "1h30m").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty; give seconds (30) or a duration (30s, 10m)")
	}
	var d time.Duration
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else {
		var perr error
		d, perr = time.ParseDuration(s)
		if perr != nil {
			return 0, fmt.Errorf("not a duration; give seconds (30) or a duration (30s, 10m)")
		}
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	if d > MaxDuration {
		return 0, fmt.Errorf("over %s", MaxDuration)
	}
	return d, nil
}

// ParseDeadline is ParseDuration that also takes "off" (and "0"): no
// deadline, the trial may take as long as it likes (a hang of the kernel
// still resets the board).
func ParseDeadline(s string) (time.Duration, error) {
	if strings.EqualFold(strings.TrimSpace(s), "off") {
		return 0, nil
	}
	return ParseDuration(s)
}

// ResolveDeadline picks the trial's deadline: the one it was staged with
// (apply/update --deadline), else the command line's, else the default.
// It returns where the value came from, for the console.
func ResolveDeadline(staged time.Duration, hasStaged bool, p Params) (time.Duration, string) {
	switch {
	case hasStaged && staged > MaxDuration:
		// The store's record, on untrusted media, is bounded as the
		// command line is: a year-long deadline is none at all.
		return MaxDuration, "staged with --deadline " + FormatDuration(staged) + ", bounded to " + FormatDuration(MaxDuration)
	case hasStaged:
		return staged, "staged with --deadline"
	case p.HasDeadline:
		return p.Deadline, KeyDeadline + "="
	}
	return DefaultDeadline, "default"
}

// Round up to whole seconds: the watchdog API counts in seconds.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// FormatDuration prints a duration without noise: 20s, 10m, 1m30s.
func FormatDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MaxOrderlyFloor bounds OrderlyFloor.
const MaxOrderlyFloor = 30 * time.Second

// OrderlyFloor is how long a committed boot must have run before an
// orderly shutdown marks it good: half of goodAfter, at most
// MaxOrderlyFloor. Why a floor: init sends SIGTERM at every orderly
// reboot, also the one a failing root's init or a watchdog-like service
// makes within seconds of boot; such a root must spend its budget.
func OrderlyFloor(goodAfter time.Duration) time.Duration {
	return min(goodAfter/2, MaxOrderlyFloor)
}
