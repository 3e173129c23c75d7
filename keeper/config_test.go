package keeper

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestArgsRoundTrip(t *testing.T) {
	for _, c := range []Config{
		{WatchdogFD: 3, Device: "/dev/watchdog0", Identity: "i6300ESB timer", Timeout: 10 * time.Second, SlotFD: 4, Trial: "root.trying-0.sqsh", Deadline: 20 * time.Second},
		{WatchdogFD: 3, Device: "/dev/watchdog", Identity: "Software Watchdog", Timeout: time.Minute, Nowayout: true, SlotFD: 4, Trial: "root.trying-2"},
		{WatchdogFD: 3, Device: "/dev/watchdog0", Identity: "fixed", SlotFD: 4, Trial: "root.trying-0.sqsh", Deadline: 20 * time.Second}, // timeout unknown
	} {
		got, err := ParseArgs(c.Args())
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("ParseArgs(Args(%+v)) = %+v, %v", c, got, err)
		}
		cmdline := []byte(strings.Join(c.Args(), "\x00") + "\x00")
		if got, ok := ParseProcCmdline(cmdline); !ok || !reflect.DeepEqual(got, c) {
			t.Errorf("ParseProcCmdline = %+v, %v", got, ok)
		}
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, argv := range [][]string{
		nil,
		{"overlayupd", "--wdt-fd=3"},
		{ProcName},
		{ProcName, "--wdt-fd=3"},
		{ProcName, "--slot-fd=4"},
		{ProcName, "--trial=x"},
		{ProcName, "--wdt-fd=-1", "--timeout=1s"},
		{ProcName, "--wdt-fd=3", "--slot-fd=4", "--trial=x"},                 // no timeout
		{ProcName, "--wdt-fd=3", "--timeout=0s", "--slot-fd=4", "--trial=x"}, // unknown is written unknown
		{ProcName, "--wdt-fd=3", "--timeout=-1s", "--slot-fd=4", "--trial=x"},
		{ProcName, "--bogus"},
	} {
		if c, err := ParseArgs(argv); err == nil {
			t.Errorf("ParseArgs(%q) = %+v, want an error", argv, c)
		}
	}
	if _, ok := ParseProcCmdline([]byte("sh\x00-c\x00sleep 1\x00")); ok {
		t.Error("a shell is taken for a keeper")
	}
	if _, ok := ParseProcCmdline(nil); ok {
		t.Error("a kernel thread (empty cmdline) is taken for a keeper")
	}
}

func TestDescribe(t *testing.T) {
	c := &Config{WatchdogFD: 3, Device: "/dev/watchdog0", Identity: "i6300ESB timer", Timeout: 10 * time.Second, SlotFD: 4, Trial: "t", Deadline: 20 * time.Second}
	unknown := *c
	unknown.Identity, unknown.Timeout = "fixed", 0
	tests := []struct {
		name   string
		c      *Config
		uptime time.Duration
		trial  bool
		want   string
		left   int
	}{
		{"no keeper, committed boot", nil, 0, false, "", 0},
		{"no keeper in a trial", nil, 0, true, NoWatchdog, 0},
		{"armed", c, 8 * time.Second, true, "must commit within 20s of boot (12s left)", 12},
		{"deadline passed", c, 25 * time.Second, true, "passed: the board resets within 10s", 0},
		{"nowayout after the trial", c, time.Minute, false, "cannot be stopped (nowayout)", 0},
		{"timeout unknown", &unknown, 8 * time.Second, true, `watchdog "fixed" (/dev/watchdog0, timeout unknown): the trial must commit within 20s of boot (12s left)`, 12},
		{"timeout unknown, deadline passed", &unknown, 25 * time.Second, true, "passed: the board resets within its timeout (unknown)", 0},
	}
	for _, tt := range tests {
		r := Describe(7, tt.c, tt.uptime, tt.trial)
		if tt.want == "" {
			if r != nil {
				t.Errorf("%s: got %+v, want nil", tt.name, r)
			}
			continue
		}
		if r == nil || !strings.Contains(r.Summary, tt.want) || r.LeftS != tt.left {
			t.Errorf("%s: got %+v, want %q, left %d", tt.name, r, tt.want, tt.left)
		}
	}
}
