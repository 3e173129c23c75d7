package keeper

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Device is what is known of a watchdog device before it is configured.
type Device struct {
	Path     string
	Identity string        // WDIOC_GETSUPPORT's identity, e.g. "i6300ESB timer"
	Options  uint32        // WDIOF_* bits from WDIOC_GETSUPPORT
	Timeout  time.Duration // WDIOC_GETTIMEOUT; 0 unknown
	Min, Max time.Duration // sysfs min_timeout, max_timeout; 0 unknown
	Nowayout bool          // sysfs nowayout: a magic close does not stop it
}

// CanSetTimeout reports whether the driver takes WDIOC_SETTIMEOUT.
func (d Device) CanSetTimeout() bool { return d.Options&unix.WDIOF_SETTIMEOUT != 0 }

// Soft reports whether this is the kernel's software watchdog, which
// cannot fire when the kernel itself is dead.
func (d Device) Soft() bool { return d.Identity == "Software Watchdog" }

// TimeoutChoice is the timeout to program and what the console should say.
type TimeoutChoice struct {
	Timeout  time.Duration // whole seconds, at least 1s
	Set      bool          // program it with WDIOC_SETTIMEOUT (else keep the device's)
	Warnings []string
}

// ChooseTimeout picks the watchdog timeout of a trial: overlayupd.wdt_timeout=
// (want) when given, else the device's maximum capped at DefaultTimeout and
// at the deadline (the default never lets a hang outlast the deadline by
// more than the deadline itself). It clamps into the device's range, and
// warns when what the user asked for cannot be had or when the deadline is
// shorter than the timeout (the reset then comes up to a timeout after the
// deadline).
func ChooseTimeout(dev Device, want, deadline time.Duration) TimeoutChoice {
	var c TimeoutChoice
	if !dev.CanSetTimeout() {
		c.Timeout = dev.Timeout
		if want > 0 && want != dev.Timeout {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s=%s: the watchdog %q cannot change its timeout; it stays %s",
				KeyTimeout, FormatDuration(want), dev.Identity, FormatDuration(dev.Timeout)))
		}
	} else {
		c.Set = true
		t := want
		if t == 0 {
			t = DefaultTimeout
			if dev.Max > 0 && dev.Max < t {
				t = dev.Max
			}
			if deadline > 0 && deadline < t {
				t = deadline
			}
		}
		t = time.Duration(ceilSeconds(t)) * time.Second
		clamped := t
		if dev.Max > 0 && clamped > dev.Max {
			clamped = dev.Max
		}
		if dev.Min > 0 && clamped < dev.Min {
			clamped = dev.Min
		}
		if clamped < time.Second {
			clamped = time.Second
		}
		if want > 0 && clamped != t {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s=%s: the watchdog %q takes %s to %s; using %s",
				KeyTimeout, FormatDuration(want), dev.Identity, FormatDuration(dev.Min), FormatDuration(dev.Max), FormatDuration(clamped)))
		}
		c.Timeout = clamped
	}
	if c.Timeout > 0 && deadline > 0 && deadline < c.Timeout {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the trial deadline %s is shorter than the watchdog timeout %s: a trial that does not commit is reset up to %s after boot, not %s; lower %s= for a faster rollback",
			FormatDuration(deadline), FormatDuration(c.Timeout), FormatDuration(deadline+c.Timeout), FormatDuration(deadline), KeyTimeout))
	}
	return c
}

// ArmedTimeout is the timeout the watchdog runs with once Arm programmed
// it, as the keeper is told: the one the driver took (got) when it was set,
// else the device's own; 0 when unknown (WDIOC_GETTIMEOUT failed and no
// timeout could be set). Never a guess: the keeper feeds by it, and a
// guess longer than the hardware's fixed timeout resets every healthy
// trial (a 60 s guess was fed every 15 s, against boards fixed at 1-10 s).
func ArmedTimeout(dev Device, c TimeoutChoice, got time.Duration, setErr error) time.Duration {
	switch {
	case !c.Set:
		return c.Timeout
	case setErr != nil:
		return dev.Timeout
	}
	return got
}

// UnknownTimeoutFeed is how often the keeper feeds a watchdog whose
// timeout it does not know. Why 250 ms: the watchdog API counts in whole
// seconds, so 1 s is the shortest timeout a driver can report or take
// (hardware that counts down faster is fed by its driver or the kernel's
// watchdog core, max_hw_heartbeat_ms, which shows user space a longer
// timeout); an unknown one is fed as a 1 s one is, every quarter of it.
// Feeding is one ioctl of a few microseconds: four a second cost nothing
// worth a reset during a healthy trial.
const UnknownTimeoutFeed = 250 * time.Millisecond

// FeedPeriod is how often the keeper feeds a watchdog of timeout t (0:
// unknown, UnknownTimeoutFeed): a quarter of it, so that three feeds in a
// row can be late before it fires. It has nothing to do with the trial's
// deadline, which Next keeps on its own.
func FeedPeriod(t time.Duration) time.Duration {
	if t <= 0 {
		return UnknownTimeoutFeed
	}
	return max(t/4, 100*time.Millisecond)
}

// WakePeriod is how often the keeper wakes for a feed period: at every
// feed, and at least every second, to look at the slot directory.
func WakePeriod(feed time.Duration) time.Duration {
	return min(feed, time.Second)
}

// FeedDue reports whether the keeper, woken every wake period, feeds now,
// since the time since its last feed. Why half a wake early: wake-ups
// jitter, and a wake a hair short of the feed period would put the feed
// off by a whole wake period (with the two equal, to twice the period).
func FeedDue(since, feed, wake time.Duration) bool {
	return since >= feed-wake/2
}

// FormatTimeout is FormatDuration for a watchdog timeout, 0 unknown.
func FormatTimeout(t time.Duration) string {
	if t <= 0 {
		return "unknown"
	}
	return FormatDuration(t)
}

// within says when a watchdog of timeout t (0: unknown) that is no longer
// fed resets the board.
func within(t time.Duration) string {
	if t <= 0 {
		return "within its timeout (unknown)"
	}
	return "within " + FormatDuration(t)
}
