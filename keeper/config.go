package keeper

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ProcName is the keeper's argv[0]: main starts the keeper when it is
// called by this name, and status finds the keeper by it in /proc.
const ProcName = "overlayupd-keeper"

// Config is the keeper's configuration, passed in its argv so that it is
// visible to status (and ps) and needs no file. File descriptors are the
// keeper's own numbers (inherited, 3 and up); 0 means none.
type Config struct {
	WatchdogFD int    // the open watchdog device
	Device     string // its path, for messages
	Identity   string
	Timeout    time.Duration // as programmed; 0 unknown (argv --timeout=unknown), see FeedPeriod
	Nowayout   bool
	SlotFD     int           // the store's slot directory
	Trial      string        // the trial entry to watch
	Deadline   time.Duration // uptime (CLOCK_BOOTTIME) by which the trial must commit; 0 none
	// The boot budget's good mark (a committed boot): at uptime GoodAfter,
	// or at an orderly shutdown (SIGTERM) before it, rename the boot count
	// BootCount in the slot directory to boots-0 (trampoline/budget.go).
	BootCount string
	GoodAfter time.Duration
}

// Args is the keeper's argv, argv[0] included.
func (c Config) Args() []string {
	a := []string{ProcName}
	add := func(k, v string) { a = append(a, "--"+k+"="+v) }
	if c.WatchdogFD > 0 {
		add("wdt-fd", strconv.Itoa(c.WatchdogFD))
		add("device", c.Device)
		add("identity", c.Identity)
		add("timeout", timeoutArg(c.Timeout))
		if c.Nowayout {
			a = append(a, "--nowayout")
		}
	}
	if c.SlotFD > 0 {
		add("slot-fd", strconv.Itoa(c.SlotFD))
		if c.Trial != "" {
			add("trial", c.Trial)
			add("deadline", c.Deadline.String())
		}
		if c.BootCount != "" {
			add("boot-count", c.BootCount)
			add("good-after", c.GoodAfter.String())
		}
	}
	return a
}

// ParseArgs reads a keeper's argv (argv[0] included) and checks it. It
// takes exactly what Args writes (--key=value, --nowayout); a hand-written
// parser, not the flag package: init-overlay links this, and every boot
// would pay flag's initialisation.
func ParseArgs(argv []string) (Config, error) {
	var c Config
	hasTimeout := false
	if len(argv) == 0 || argv[0] != ProcName {
		return c, fmt.Errorf("not a keeper's argv")
	}
	for _, a := range argv[1:] {
		k, v, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			return c, fmt.Errorf("unexpected argument %q", a)
		}
		var err error
		switch k {
		case "wdt-fd":
			c.WatchdogFD, err = strconv.Atoi(v)
		case "device":
			c.Device = v
		case "identity":
			c.Identity = v
		case "timeout":
			c.Timeout, err = parseTimeoutArg(v)
			hasTimeout = err == nil
		case "nowayout":
			if hasValue {
				err = errors.New("takes no value")
			}
			c.Nowayout = true
		case "slot-fd":
			c.SlotFD, err = strconv.Atoi(v)
		case "trial":
			c.Trial = v
		case "deadline":
			c.Deadline, err = time.ParseDuration(v)
		case "boot-count":
			c.BootCount = v
		case "good-after":
			c.GoodAfter, err = time.ParseDuration(v)
		default:
			err = errors.New("unknown")
		}
		if err != nil {
			return c, fmt.Errorf("%s: %w", a, err)
		}
	}
	if c.WatchdogFD < 0 || c.SlotFD < 0 || c.Timeout < 0 || c.Deadline < 0 {
		return c, errors.New("negative file descriptor or duration")
	}
	if c.WatchdogFD > 0 && !hasTimeout {
		return c, errors.New("a watchdog without --timeout (a duration, or unknown)")
	}
	if (c.SlotFD > 0) != (c.Trial != "" || c.BootCount != "") {
		return c, errors.New("a trial or a boot count needs --slot-fd, and --slot-fd one of them")
	}
	if c.BootCount != "" && (c.Trial != "" || c.WatchdogFD > 0 || strings.ContainsAny(c.BootCount, "/\x00") || c.GoodAfter < 0) {
		return c, errors.New("a good mark is a keeper's only duty, for a plain file name")
	}
	if c.WatchdogFD == 0 && c.SlotFD == 0 {
		return c, errors.New("no duty: neither a watchdog, nor a trial, nor a good mark")
	}
	return c, nil
}

// timeoutArg writes a watchdog timeout for the keeper's argv: a Go
// duration, or "unknown" (0), which ps and status show as it is.
func timeoutArg(t time.Duration) string {
	if t <= 0 {
		return "unknown"
	}
	return t.String()
}

// parseTimeoutArg reads what timeoutArg writes. A timeout of 0 is refused:
// an unknown one is written as such, never as a duration.
func parseTimeoutArg(v string) (time.Duration, error) {
	if v == "unknown" {
		return 0, nil
	}
	t, err := time.ParseDuration(v)
	if err == nil && t <= 0 {
		err = errors.New("not a positive duration; an unknown timeout is written unknown")
	}
	return t, err
}
