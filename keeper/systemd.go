package keeper

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
)

// Systemd is what systemd (as PID 1) does with the hardware watchdog.
type Systemd struct {
	Runtime time.Duration // RuntimeWatchdogSec; 0 off
	// Default: RuntimeWatchdogSec=default, keep the programmed timeout.
	Default bool
	Device  string // WatchdogDevice=, "" for systemd's default (/dev/watchdog0, /dev/watchdog)
}

// Wants reports whether systemd wants the watchdog at devPath.
func (s Systemd) Wants(devPath string) bool {
	if s.Runtime == 0 && !s.Default {
		return false
	}
	switch s.Device {
	case "", "/dev/watchdog", "/dev/watchdog0":
		return devPath == "/dev/watchdog" || devPath == "/dev/watchdog0"
	}
	return s.Device == devPath
}

// ParseSystemd reads the [Manager] settings of system.conf files, given in
// the order systemd reads them (the main file, then the drop-ins by name:
// a later one wins), and the kernel command line, whose
// systemd.watchdog_sec= and systemd.watchdog_device= win over both.
func ParseSystemd(confs [][]byte, cmdline string) Systemd {
	var s Systemd
	set := func(v string) {
		d, def, ok := parseSystemdWatchdog(v)
		if ok {
			s.Runtime, s.Default = d, def
		}
	}
	for _, c := range confs {
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(c))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if strings.HasPrefix(line, "[") {
				section = strings.Trim(line, "[] ")
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || section != "Manager" {
				continue
			}
			switch strings.TrimSpace(k) {
			case "RuntimeWatchdogSec":
				set(strings.TrimSpace(v))
			case "WatchdogDevice":
				s.Device = strings.TrimSpace(v)
			}
		}
	}
	ps := kcmdline.Split(cmdline)
	if v, ok := kcmdline.Lookup(ps, "systemd.watchdog_sec"); ok {
		set(v)
	}
	if v, ok := kcmdline.Lookup(ps, "systemd.watchdog_device"); ok {
		s.Device = v
	}
	return s
}

func parseSystemdWatchdog(v string) (d time.Duration, def, ok bool) {
	switch strings.ToLower(v) {
	case "", "0", "off", "infinity":
		return 0, false, true
	case "default":
		return 0, true, true
	}
	d, err := ParseTimespan(v)
	return d, false, err == nil
}

// timespanUnit is the length of a systemd time unit. A switch, not a map:
// a package-level map is built at every start of init-overlay, which links
// this package.
func timespanUnit(u string) (time.Duration, bool) {
	switch u {
	case "us", "usec", "µs":
		return time.Microsecond, true
	case "ms", "msec":
		return time.Millisecond, true
	case "", "s", "sec", "second", "seconds":
		return time.Second, true
	case "m", "min", "minute", "minutes":
		return time.Minute, true
	case "h", "hr", "hour", "hours":
		return time.Hour, true
	case "d", "day", "days":
		return 24 * time.Hour, true
	case "w", "week", "weeks":
		return 7 * 24 * time.Hour, true
	}
	return 0, false
}

// ParseTimespan reads a systemd time span: "30", "30s", "5min", "1min 30s".
func ParseTimespan(s string) (time.Duration, error) {
	var total time.Duration
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty time span")
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("time span %q: a number expected", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("time span %q: %w", s, err)
		}
		rest = strings.TrimLeft(rest[i:], " ")
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9') && rest[j] != ' ' {
			j++
		}
		unit, ok := timespanUnit(rest[:j])
		if !ok {
			return 0, fmt.Errorf("time span %q: unknown unit %q", s, rest[:j])
		}
		rest = strings.TrimLeft(rest[j:], " ")
		total += time.Duration(n * float64(unit))
		if total > MaxDuration {
			return 0, fmt.Errorf("time span %q: too long", s)
		}
	}
	return total, nil
}
