package keeper

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
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
	Timeout    time.Duration // as programmed
	Nowayout   bool
	SlotFD     int           // the store's slot directory
	Trial      string        // the trial entry to watch
	Deadline   time.Duration // uptime (CLOCK_BOOTTIME) by which the trial must commit; 0 none
}

func (c *Config) flags(w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(ProcName, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.IntVar(&c.WatchdogFD, "wdt-fd", 0, "inherited file descriptor of the watchdog device")
	fs.StringVar(&c.Device, "device", "", "path of the watchdog device")
	fs.StringVar(&c.Identity, "identity", "", "the watchdog's identity")
	fs.DurationVar(&c.Timeout, "timeout", 0, "the watchdog's timeout")
	fs.BoolVar(&c.Nowayout, "nowayout", false, "the watchdog cannot be stopped")
	fs.IntVar(&c.SlotFD, "slot-fd", 0, "inherited file descriptor of the store's slot directory")
	fs.StringVar(&c.Trial, "trial", "", "the trial entry to watch")
	fs.DurationVar(&c.Deadline, "deadline", 0, "uptime by which the trial must commit (0: none)")
	return fs
}

// Args is the keeper's argv, argv[0] included.
func (c Config) Args() []string {
	a := []string{ProcName}
	add := func(k, v string) { a = append(a, "--"+k+"="+v) }
	if c.WatchdogFD > 0 {
		add("wdt-fd", strconv.Itoa(c.WatchdogFD))
		add("device", c.Device)
		add("identity", c.Identity)
		add("timeout", c.Timeout.String())
		if c.Nowayout {
			a = append(a, "--nowayout")
		}
	}
	if c.SlotFD > 0 {
		add("slot-fd", strconv.Itoa(c.SlotFD))
		add("trial", c.Trial)
		add("deadline", c.Deadline.String())
	}
	return a
}

// ParseArgs reads a keeper's argv (argv[0] included) and checks it.
func ParseArgs(argv []string) (Config, error) {
	var c Config
	if len(argv) == 0 || argv[0] != ProcName {
		return c, fmt.Errorf("not a keeper's argv")
	}
	if err := c.flags(io.Discard).Parse(argv[1:]); err != nil {
		return c, err
	}
	if c.WatchdogFD < 0 || c.SlotFD < 0 || c.Timeout < 0 || c.Deadline < 0 {
		return c, errors.New("negative file descriptor or duration")
	}
	if c.WatchdogFD > 0 && c.Timeout == 0 {
		return c, errors.New("a watchdog without a timeout")
	}
	if (c.SlotFD > 0) != (c.Trial != "") {
		return c, errors.New("a trial needs both --slot-fd and --trial")
	}
	if c.WatchdogFD == 0 && c.SlotFD == 0 {
		return c, errors.New("no duty: neither a watchdog nor a trial")
	}
	return c, nil
}
