package keeper

import (
	"testing"
	"time"
)

func TestParseTimespan(t *testing.T) {
	tests := map[string]time.Duration{
		"30": 30 * time.Second, "30s": 30 * time.Second, "5min": 5 * time.Minute, "1min 30s": 90 * time.Second,
		"2h": 2 * time.Hour, "500ms": 500 * time.Millisecond, "1.5min": 90 * time.Second, "1m30s": 90 * time.Second,
	}
	for in, want := range tests {
		if got, err := ParseTimespan(in); err != nil || got != want {
			t.Errorf("ParseTimespan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "5 parsecs", "min"} {
		if got, err := ParseTimespan(bad); err == nil {
			t.Errorf("ParseTimespan(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseSystemd(t *testing.T) {
	main := []byte("[Manager]\n#RuntimeWatchdogSec=off\nRuntimeWatchdogSec=30s\n")
	tests := []struct {
		name    string
		confs   []string
		cmdline string
		want    Systemd
		wants   bool // for /dev/watchdog0
	}{
		{"off by default", []string{"[Manager]\n#RuntimeWatchdogSec=off\n"}, "", Systemd{}, false},
		{"set", []string{string(main)}, "", Systemd{Runtime: 30 * time.Second}, true},
		{"drop-in turns it off", []string{string(main), "[Manager]\nRuntimeWatchdogSec=off\n"}, "", Systemd{}, false},
		{"other section ignored", []string{"[Journal]\nRuntimeWatchdogSec=30s\n"}, "", Systemd{}, false},
		{"default", []string{"[Manager]\nRuntimeWatchdogSec=default\n"}, "", Systemd{Default: true}, true},
		{"kernel command line wins", []string{string(main)}, "ro systemd.watchdog_sec=1min", Systemd{Runtime: time.Minute}, true},
		{"another device", []string{string(main) + "WatchdogDevice=/dev/watchdog1\n"}, "", Systemd{Runtime: 30 * time.Second, Device: "/dev/watchdog1"}, false},
		{"bad value keeps the earlier", []string{string(main), "[Manager]\nRuntimeWatchdogSec=soon\n"}, "", Systemd{Runtime: 30 * time.Second}, true},
	}
	for _, tt := range tests {
		var confs [][]byte
		for _, c := range tt.confs {
			confs = append(confs, []byte(c))
		}
		got := ParseSystemd(confs, tt.cmdline)
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		if w := got.Wants("/dev/watchdog0"); w != tt.wants {
			t.Errorf("%s: Wants = %v, want %v", tt.name, w, tt.wants)
		}
	}
}
