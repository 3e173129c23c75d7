package keeper

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"30", 30 * time.Second, ""},
		{"30s", 30 * time.Second, ""},
		{"10m", 10 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"0", 0, ""},
		{" 45 ", 45 * time.Second, ""},
		{"", 0, "empty"},
		{"abc", 0, "not a duration"},
		{"-5s", 0, "negative"},
		{"-5", 0, "not a duration"},
		{"9999h", 0, "over"},
		{"99999999999", 0, "not a duration"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if d, err := ParseDeadline("off"); err != nil || d != 0 {
		t.Errorf("ParseDeadline(off) = %v, %v; want 0", d, err)
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		cmdline  string
		want     Params
		wantWarn string
	}{
		{"ro quiet", Params{}, ""},
		{"overlayupd.wdt_timeout=15 overlayupd.trial_deadline=20s", Params{Timeout: 15 * time.Second, Deadline: 20 * time.Second, HasDeadline: true}, ""},
		{"overlayupd.trial_deadline=off", Params{HasDeadline: true}, ""},
		{"overlayupd.trial_deadline=abc", Params{}, "overlayupd.trial_deadline=abc: not a duration"},
		{"overlayupd.trial_deadline=", Params{}, "empty"},
		{"overlayupd.wdt_timeout=0", Params{}, "would reset at once"},
		{"overlayupd.wdt_timeout=x1", Params{}, "overlayupd.wdt_timeout=x1: not a duration"},
		{"overlayupd.trial_deadline=1m overlayupd.trial_deadline=2m", Params{Deadline: 2 * time.Minute, HasDeadline: true}, ""},
		{"overlayupd.wdt_device=off", Params{Off: true}, ""},
		{"overlayupd.wdt_device=/dev/watchdog1", Params{Device: "/dev/watchdog1"}, ""},
		{"overlayupd.wdt_device=/etc/passwd", Params{}, "give a /dev path or off"},
		{"overlayupd.wdt_device=/dev/../etc/passwd", Params{}, "give a /dev path or off"},
	}
	for _, tt := range tests {
		got, warn := ParseParams(tt.cmdline)
		if got != tt.want {
			t.Errorf("ParseParams(%q) = %+v, want %+v", tt.cmdline, got, tt.want)
		}
		joined := strings.Join(warn, "\n")
		if tt.wantWarn == "" && joined != "" || !strings.Contains(joined, tt.wantWarn) {
			t.Errorf("ParseParams(%q) warnings %q, want %q", tt.cmdline, joined, tt.wantWarn)
		}
	}
}

func TestResolveDeadline(t *testing.T) {
	cmd := Params{Deadline: 5 * time.Minute, HasDeadline: true}
	tests := []struct {
		staged    time.Duration
		hasStaged bool
		p         Params
		want      time.Duration
		from      string
	}{
		{20 * time.Second, true, cmd, 20 * time.Second, "--deadline"},
		{0, false, cmd, 5 * time.Minute, KeyDeadline},
		{0, false, Params{}, DefaultDeadline, "default"},
		{0, false, Params{HasDeadline: true}, 0, KeyDeadline},
		// The store's record is bounded as the command line is.
		{2562047 * time.Hour, true, cmd, MaxDuration, "bounded"},
	}
	for _, tt := range tests {
		got, from := ResolveDeadline(tt.staged, tt.hasStaged, tt.p)
		if got != tt.want || !strings.Contains(from, tt.from) {
			t.Errorf("ResolveDeadline(%v, %v, %+v) = %v (%s), want %v (%s)", tt.staged, tt.hasStaged, tt.p, got, from, tt.want, tt.from)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		20 * time.Second: "20s", 10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Second: "1m30s",
		90 * time.Minute: "1h30m", 0: "0s", 1500 * time.Millisecond: "2s",
	} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestOrderlyFloor(t *testing.T) {
	for _, c := range []struct{ goodAfter, want time.Duration }{
		{0, 0},
		{10 * time.Second, 5 * time.Second},
		{time.Minute, 30 * time.Second},
		{5 * time.Minute, 30 * time.Second},
		{24 * time.Hour, 30 * time.Second},
	} {
		if got := OrderlyFloor(c.goodAfter); got != c.want {
			t.Errorf("OrderlyFloor(%v) = %v, want %v", c.goodAfter, got, c.want)
		}
	}
}
