package trampoline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/trampoline"
)

func TestDecideAfterWatchdogReset(t *testing.T) {
	tests := []struct {
		name     string
		names    []string
		reset    bool
		wantWhy  string // in the failed.reason note ("" : no such note)
		wantPlan string // in the plan's Why
	}{
		{"spent trial, watchdog reset", []string{"root.sqsh", "root.trying-0.sqsh"}, true,
			"trial root.trying-0.sqsh: " + trampoline.WatchdogResetWhy + ", no tries left", trampoline.WatchdogResetWhy},
		{"spent trial, no reset", []string{"root.sqsh", "root.trying-0.sqsh"}, false,
			"booted and never committed", "never committed"},
		{"trial with a try left, watchdog reset", []string{"root.sqsh", "root.trying-1.sqsh"}, true,
			"", trampoline.WatchdogResetWhy + "; trial not committed yet"},
		{"committed boot ignores the reset", []string{"root.sqsh"}, true, "", "committed root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trampoline.DecideAfter(state(tt.names...), trampoline.LastBoot{WatchdogReset: tt.reset})
			var got string
			for _, n := range p.Notes {
				if n.File == trampoline.FailedReasonFile {
					got = n.Why
				}
			}
			if tt.wantWhy == "" && got != "" || !strings.Contains(got, tt.wantWhy) {
				t.Errorf("failed.reason: got %q, want %q", got, tt.wantWhy)
			}
			if !strings.Contains(p.Why, tt.wantPlan) {
				t.Errorf("plan why: got %q, want it to contain %q", p.Why, tt.wantPlan)
			}
			if tt.reset == false && strings.Contains(p.Why, "watchdog reset or hang") {
				t.Errorf("plan why %q names a watchdog reset that did not happen", p.Why)
			}
		})
	}
}

// TestBootAsksLastBootOnlyInTrials: the watchdog's boot status is read only
// when a trial is in progress, so a committed boot pays nothing for it.
func TestBootAsksLastBootOnlyInTrials(t *testing.T) {
	for _, tc := range []struct {
		files map[string]string
		want  int
	}{
		{map[string]string{"root.sqsh": "a"}, 0},
		{map[string]string{"root.sqsh": "a", "root.try-1.sqsh": "b"}, 0},
		{map[string]string{"root.sqsh": "a", "root.trying-0.sqsh": "b"}, 1},
	} {
		s := newFileStore(t, tc.files)
		calls := 0
		s.LastBoot = func() trampoline.LastBoot { calls++; return trampoline.LastBoot{WatchdogReset: true} }
		p, err := s.Boot()
		if err != nil {
			t.Fatal(err)
		}
		if calls != tc.want {
			t.Errorf("%v: LastBoot called %d times, want %d", tc.files, calls, tc.want)
		}
		if tc.want == 1 && !strings.Contains(content(t, s, trampoline.FailedReasonFile), trampoline.WatchdogResetWhy) {
			t.Errorf("failed.reason lacks the watchdog reset: %s (plan %s)", content(t, s, trampoline.FailedReasonFile), p)
		}
	}
}

func TestStageTrialDeadline(t *testing.T) {
	s := newFileStore(t, map[string]string{"root.sqsh": "a", ".stage-1": "b", ".stage-2": "c", ".stage-3": "d"})
	if _, ok, err := s.TrialDeadline(); ok || err != nil {
		t.Fatalf("fresh store: deadline ok=%v err=%v, want none", ok, err)
	}
	if _, err := s.StageTrial(filepath.Join(s.SlotDir, ".stage-1"), trampoline.Trial{Tries: 1, Deadline: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.TrialDeadline(); !ok || err != nil || d != 90*time.Second {
		t.Errorf("after stage with 90s: got %v ok=%v err=%v", d, ok, err)
	}
	// A refused stage (bad tries) leaves the record as it was.
	if _, err := s.StageTrial(filepath.Join(s.SlotDir, ".stage-2"), trampoline.Trial{Tries: 0, Deadline: time.Second}); err == nil {
		t.Fatal("stage with 0 tries accepted")
	}
	if d, _, _ := s.TrialDeadline(); d != 90*time.Second {
		t.Errorf("a refused stage changed the deadline to %v", d)
	}
	// A stage without a deadline removes the old one: it was the old trial's.
	if _, err := s.Stage(filepath.Join(s.SlotDir, ".stage-3"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(s.SlotDir, trampoline.TrialDeadlineFile)); !os.IsNotExist(err) {
		t.Errorf("stage without a deadline left %s: %v", trampoline.TrialDeadlineFile, err)
	}
}

func TestTrialDeadlineHostile(t *testing.T) {
	for name, body := range map[string]string{
		"garbage":  "not json",
		"negative": `{"deadline":"-5s"}`,
		"bad unit": `{"deadline":"5 parsecs"}`,
	} {
		s := newFileStore(t, map[string]string{trampoline.TrialDeadlineFile: body})
		if d, ok, err := s.TrialDeadline(); ok || err == nil {
			t.Errorf("%s: got %v ok=%v err=%v, want an error", name, d, ok, err)
		}
	}
	s := newFileStore(t, nil)
	if err := os.Symlink("/dev/zero", filepath.Join(s.SlotDir, trampoline.TrialDeadlineFile)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TrialDeadline(); ok || err == nil {
		t.Errorf("a link to /dev/zero: ok=%v err=%v, want an error", ok, err)
	}
}
