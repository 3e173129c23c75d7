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

// PetInterval is how often the keeper feeds a watchdog of timeout t: a
// quarter of it, so that three feeds in a row can be late before it fires.
func PetInterval(t time.Duration) time.Duration {
	i := t / 4
	if i < 100*time.Millisecond {
		i = 100 * time.Millisecond
	}
	return i
}
