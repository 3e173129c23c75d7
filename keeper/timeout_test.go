package keeper

import (
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

func TestPetInterval(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		60 * time.Second: 15 * time.Second, time.Second: 250 * time.Millisecond, 0: 100 * time.Millisecond,
	} {
		if got := PetInterval(in); got != want {
			t.Errorf("PetInterval(%v) = %v, want %v", in, got, want)
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
		{"systemd takes it", trial, Tick{TrialOver: true, Systemd: 30 * s}, Handover},
		{"systemd takes it from nowayout", Config{Nowayout: true}, Tick{TrialOver: true, Systemd: 30 * s}, Handover},
	}
	for _, tt := range tests {
		if got := Next(tt.c, tt.tick); got != tt.want {
			t.Errorf("%s: Next = %v, want %v", tt.name, got, tt.want)
		}
	}
}
