package keeper

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SelfExe is the binary the keeper is started from: this one.
var SelfExe = "/proc/self/exe"

// TrialInput is what the trampoline knows of the trial it is about to boot.
type TrialInput struct {
	Cmdline   string        // the kernel command line
	Staged    time.Duration // the trial's --deadline, if hasStaged
	HasStaged bool
	SlotDir   string // the store's slot directory, as PID 1 sees it now
	Trial     string // the trial entry, under its name after the try was consumed
}

// Logf is how the keeper and Arm write a console line.
type Logf func(format string, args ...any)

// Arm starts the trial watchdog: the device is opened and programmed here,
// by PID 1, before anything of the trial is mounted, and handed to a keeper
// process. Every failure is a console line and the trial boots anyway,
// without a watchdog. It returns the keeper's pid (0: none).
func Arm(in TrialInput, info, warn Logf) int {
	p, warnings := ParseParams(in.Cmdline)
	for _, w := range warnings {
		warn("watchdog: %s", w)
	}
	deadline, from := ResolveDeadline(in.Staged, in.HasStaged, p)
	if p.Off {
		warn("watchdog: %s=off: %s for trial %s", KeyDevice, NoWatchdog, in.Trial)
		return 0
	}
	paths := DevicePaths
	if p.Device != "" {
		paths = []string{p.Device}
	}
	f, dev, err := Open(paths...)
	if err != nil {
		if errors.Is(err, ErrNoDevice) {
			warn("watchdog: %s for trial %s: %v; load the board's watchdog driver (or softdog) before init-overlay runs", NoWatchdog, in.Trial, err)
		} else {
			warn("watchdog: %s for trial %s: %v", NoWatchdog, in.Trial, err)
		}
		return 0
	}
	choice := ChooseTimeout(dev, p.Timeout, deadline)
	for _, w := range choice.Warnings {
		warn("watchdog: %s", w)
	}
	var got time.Duration
	var setErr error
	if choice.Set {
		if got, setErr = SetTimeout(f, choice.Timeout); setErr != nil {
			warn("watchdog: %v; keeping its timeout (%s)", setErr, FormatTimeout(dev.Timeout))
		}
	}
	timeout := ArmedTimeout(dev, choice, got, setErr) // 0: unknown, see FeedPeriod
	if err := Keepalive(f); err != nil {
		warn("watchdog: %v", err)
	}
	pid, err := spawn(f, dev, timeout, in, deadline)
	if err != nil {
		why := "disarmed"
		if dev.Nowayout {
			why = fmt.Sprintf("it cannot be stopped (nowayout): the board resets %s", within(timeout))
			_ = f.Close()
		} else if cerr := MagicClose(f); cerr != nil {
			why = cerr.Error()
		}
		warn("watchdog: cannot start the keeper: %v; %s; %s", err, why, NoWatchdog)
		return 0
	}
	// The keeper holds its own copies: closing ours is no release of the
	// device (that comes with the last close), so it keeps running.
	_ = f.Close()
	dl := "no deadline (" + from + "): a hang of the kernel resets the board"
	if deadline > 0 {
		dl = fmt.Sprintf("the trial must commit within %s of boot (%s), or the board resets", FormatDuration(deadline), from)
	}
	if timeout > 0 {
		info("watchdog: %q (%s), timeout %s, fed by keeper pid %d for trial %s: %s", dev.Identity, dev.Path, FormatDuration(timeout), pid, in.Trial, dl)
	} else {
		info("watchdog: %q (%s), timeout unknown (the driver neither reports nor sets one): fed every %s, often enough for any hardware timeout, by keeper pid %d for trial %s: %s",
			dev.Identity, dev.Path, FeedPeriod(timeout), pid, in.Trial, dl)
	}
	if dev.Soft() {
		info("watchdog: softdog catches a hung system and a missed deadline, not a dead kernel: use the board's hardware watchdog where it has one")
	}
	if dev.Nowayout {
		info("watchdog: nowayout: after the trial the keeper goes on feeding it (or hands it to systemd)")
	}
	return pid
}

func spawn(wdt *os.File, dev Device, timeout time.Duration, in TrialInput, deadline time.Duration) (int, error) {
	slot, err := os.OpenFile(in.SlotDir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", in.SlotDir, err)
	}
	defer slot.Close()
	cfg := Config{WatchdogFD: 3, Device: dev.Path, Identity: dev.Identity, Timeout: timeout, Nowayout: dev.Nowayout,
		SlotFD: 4, Trial: in.Trial, Deadline: deadline}
	return start(cfg, wdt, slot) // fds 3 and 4
}

// start forks and execs the keeper with cfg and files as its descriptors 3
// and up: stdin /dev/null, stdout and stderr the console (PID 1's stderr).
// os.StartProcess rather than os/exec: this runs in PID 1, and init-overlay
// links no os/exec (cmd/init-overlay's budget).
func start(cfg Config, files ...*os.File) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	p, err := os.StartProcess(SelfExe, cfg.Args(), &os.ProcAttr{
		Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: append([]*os.File{null, os.Stderr, os.Stderr}, files...),
		// Its own session: no console job-control signal reaches it.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, err
	}
	// Why no Wait: PID 1 is about to exec the real init, which inherits
	// the keeper as its child and reaps it like any orphan.
	pid := p.Pid
	_ = p.Release()
	return pid, nil
}
