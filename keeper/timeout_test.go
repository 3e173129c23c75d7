package keeper

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestChooseTimeout(t *testing.T) {
	s := time.Second
	esb := Device{Identity: "i6300ESB timer", Options: unix.WDIOF_SETTIMEOUT | unix.WDIOF_MAGICCLOSE, Timeout: 30 * s, Min: s, Max: 2046 * s}
	tiny := Device{Identity: "bcm2835", Options: unix.WDIOF_SETTIMEOUT, Timeout: 15 * s, Min: s, Max: 15 * s}
	fixed := Device{Identity: "fixed", Timeout: 20 * s}
	unknown := Device{Identity: "old", Options: unix.WDIOF_SETTIMEOUT}
	tests := []struct {
		name     string
		dev      Device
		want     time.Duration
		deadline time.Duration
		got      time.Duration
		set      bool
		warn     string
	}{
		{"default capped", esb, 0, 10 * time.Minute, DefaultTimeout, true, ""},
		{"default is the device max when smaller", tiny, 0, 10 * time.Minute, 15 * s, true, ""},
		{"default never outlasts the deadline", esb, 0, 20 * s, 20 * s, true, ""},
		{"no deadline", esb, 0, 0, DefaultTimeout, true, ""},
		{"user's timeout", esb, 10 * s, 20 * s, 10 * s, true, ""},
		{"user's timeout rounded up", esb, 1500 * time.Millisecond, 20 * s, 2 * s, true, ""},
		{"user's timeout over the max", tiny, 60 * s, 10 * time.Minute, 15 * s, true, "takes 1s to 15s; using 15s"},
		{"deadline shorter than the user's timeout", esb, 30 * s, 20 * s, 30 * s, true, "deadline 20s is shorter than the watchdog timeout 30s: a trial that does not commit is reset up to 50s after boot"},
		{"fixed timeout", fixed, 0, 10 * time.Minute, 20 * s, false, ""},
		{"fixed timeout, user asks", fixed, 10 * s, 10 * time.Minute, 20 * s, false, "cannot change its timeout; it stays 20s"},
		{"fixed timeout longer than the deadline", fixed, 0, 5 * s, 20 * s, false, "shorter than the watchdog timeout"},
		{"unknown range", unknown, 0, 10 * time.Minute, DefaultTimeout, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ChooseTimeout(tt.dev, tt.want, tt.deadline)
			if c.Timeout != tt.got || c.Set != tt.set {
				t.Errorf("got %v set=%v, want %v set=%v", c.Timeout, c.Set, tt.got, tt.set)
			}
			w := strings.Join(c.Warnings, "\n")
			if tt.warn == "" && w != "" || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

func TestFeedPeriod(t *testing.T) {
	ms, s := time.Millisecond, time.Second
	tests := []struct {
		timeout, feed, wake time.Duration
	}{
		{60 * s, 15 * s, s},
		{5 * s, 1250 * ms, s},
		{s, 250 * ms, 250 * ms},
		{300 * ms, 100 * ms, 100 * ms},
		{0, UnknownTimeoutFeed, UnknownTimeoutFeed}, // unknown
	}
	for _, tt := range tests {
		if got := FeedPeriod(tt.timeout); got != tt.feed {
			t.Errorf("FeedPeriod(%v) = %v, want %v", tt.timeout, got, tt.feed)
		}
		if got := WakePeriod(FeedPeriod(tt.timeout)); got != tt.wake {
			t.Errorf("WakePeriod(FeedPeriod(%v)) = %v, want %v", tt.timeout, got, tt.wake)
		}
	}
}

// TestArmedFeed: from what Arm learns of a device to how often the keeper
// feeds it, through the keeper's argv. A timeout that can be neither read
// nor set is unknown, and fed for the shortest timeout the watchdog API can
// state (1 s), never for a guess: a 60 s guess was fed every 15 s, and a
// board whose watchdog is fixed at 1-10 s reset every healthy trial.
func TestArmedFeed(t *testing.T) {
	s := time.Second
	settable := Device{Identity: "i6300ESB timer", Options: unix.WDIOF_SETTIMEOUT, Timeout: 30 * s, Min: s, Max: 2046 * s}
	readable := Device{Identity: "fixed 5s", Timeout: 5 * s}
	unreadable := Device{Identity: "fixed, unreadable"}
	setOnly := Device{Identity: "set, unreadable", Options: unix.WDIOF_SETTIMEOUT}
	refused := errors.New("set the watchdog timeout to 1m: operation not supported")
	tests := []struct {
		name     string
		dev      Device
		want     time.Duration // overlayupd.wdt_timeout=
		got      time.Duration // what WDIOC_SETTIMEOUT took
		setErr   error
		deadline time.Duration
		timeout  time.Duration // the keeper's; 0 unknown
		feed     time.Duration
	}{
		{"set", settable, 0, 60 * s, nil, 10 * time.Minute, 60 * s, 15 * s},
		{"set, the driver rounds", settable, 0, 2 * s, nil, 10 * time.Minute, 2 * s, 500 * time.Millisecond},
		{"set refused, readable", settable, 0, 0, refused, 10 * time.Minute, 30 * s, 7500 * time.Millisecond},
		{"fixed, readable", readable, 0, 0, nil, 10 * time.Minute, 5 * s, 1250 * time.Millisecond},
		{"fixed, unreadable", unreadable, 0, 0, nil, 10 * time.Minute, 0, 250 * time.Millisecond},
		{"fixed, unreadable, user asks", unreadable, 30 * s, 0, nil, 10 * time.Minute, 0, 250 * time.Millisecond},
		{"set refused, unreadable", setOnly, 0, 0, refused, 10 * time.Minute, 0, 250 * time.Millisecond},
		{"set refused, unreadable, short deadline", setOnly, 0, 0, refused, 20 * s, 0, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			choice := ChooseTimeout(tt.dev, tt.want, tt.deadline)
			armed := ArmedTimeout(tt.dev, choice, tt.got, tt.setErr)
			sent := Config{WatchdogFD: 3, Device: "/dev/watchdog0", Identity: tt.dev.Identity, Timeout: armed, SlotFD: 4, Trial: "root.trying-0", Deadline: tt.deadline}
			c, err := ParseArgs(sent.Args())
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", sent.Args(), err)
			}
			if c.Timeout != tt.timeout || c.Deadline != tt.deadline {
				t.Errorf("the keeper got timeout %v, deadline %v; want %v, %v", c.Timeout, c.Deadline, tt.timeout, tt.deadline)
			}
			if got := FeedPeriod(c.Timeout); got != tt.feed {
				t.Errorf("the keeper feeds every %v, want %v", got, tt.feed)
			}
			// The deadline is the trial's, whatever the feed period.
			if got := Next(c, Tick{Uptime: tt.deadline - time.Millisecond}); got != Pet {
				t.Errorf("just before the deadline: %v, want pet", got)
			}
			if got := Next(c, Tick{Uptime: tt.deadline}); got != Starve {
				t.Errorf("at the deadline: %v, want starve", got)
			}
		})
	}
}

// TestFeedDue: the keeper wakes every wake period, give or take the
// scheduler; a wake a little early still feeds, so that the time between
// feeds stays the feed period and never doubles.
func TestFeedDue(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		since, feed, wake time.Duration
		want              bool
	}{
		{250 * ms, 250 * ms, 250 * ms, true},
		{240 * ms, 250 * ms, 250 * ms, true}, // woke 10ms early after a late wake
		{100 * ms, 250 * ms, 250 * ms, false},
		{14 * time.Second, 15 * time.Second, time.Second, false},
		{14600 * ms, 15 * time.Second, time.Second, true},
	}
	for _, tt := range tests {
		if got := FeedDue(tt.since, tt.feed, tt.wake); got != tt.want {
			t.Errorf("FeedDue(%v, %v, %v) = %v, want %v", tt.since, tt.feed, tt.wake, got, tt.want)
		}
	}
}

func TestNext(t *testing.T) {
	s := time.Second
	trial := Config{Timeout: 10 * s, Deadline: 20 * s}
	tests := []struct {
		name string
		c    Config
		tick Tick
		want Action
	}{
		{"trial running", trial, Tick{Uptime: 5 * s}, Pet},
		{"at the deadline", trial, Tick{Uptime: 20 * s}, Starve},
		{"past the deadline", trial, Tick{Uptime: 25 * s}, Starve},
		{"committed", trial, Tick{Uptime: 5 * s, TrialOver: true}, Disarm},
		{"committed after the deadline, before the reset", trial, Tick{Uptime: 25 * s, TrialOver: true}, Disarm},
		{"no deadline", Config{Timeout: 10 * s}, Tick{Uptime: time.Hour}, Pet},
		{"nowayout", Config{Timeout: 10 * s, Nowayout: true}, Tick{TrialOver: true}, PetForever},
		{"systemd takes it", trial, Tick{TrialOver: true, Systemd: true}, Handover},
		{"systemd takes it from nowayout", Config{Nowayout: true}, Tick{TrialOver: true, Systemd: true}, Handover},
	}
	for _, tt := range tests {
		if got := Next(tt.c, tt.tick); got != tt.want {
			t.Errorf("%s: Next = %v, want %v", tt.name, got, tt.want)
		}
	}
}
