package trampoline_test

import (
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

const sfx = ".sqsh"

func state(names ...string) trampoline.State { return trampoline.NewState(sfx, names...) }

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		names     []string
		wantBoot  string
		wantTrial bool
		wantOps   string
	}{
		{"committed only", []string{"root.sqsh"}, "root.sqsh", false, "no change"},
		{"staged one try", []string{"root.sqsh", "root.try-1.sqsh"}, "root.trying-0.sqsh", true,
			"rename root.try-1.sqsh -> root.trying-0.sqsh"},
		{"staged three tries", []string{"root.sqsh", "root.try-3.sqsh"}, "root.trying-2.sqsh", true,
			"rename root.try-3.sqsh -> root.trying-2.sqsh"},
		{"trial with tries left", []string{"root.sqsh", "root.trying-2.sqsh"}, "root.trying-1.sqsh", true,
			"rename root.trying-2.sqsh -> root.trying-1.sqsh"},
		{"trial never committed", []string{"root.sqsh", "root.trying-0.sqsh"}, "root.sqsh", false,
			"rename root.trying-0.sqsh -> root.failed.sqsh"},
		{"trial never committed, older failure", []string{"root.sqsh", "root.trying-0.sqsh", "root.failed.sqsh"}, "root.sqsh", false,
			"rename root.failed.sqsh -> rm-root.failed.sqsh; rename root.trying-0.sqsh -> root.failed.sqsh; remove rm-root.failed.sqsh"},
		{"rm name taken", []string{"root.sqsh", "root.trying-0.sqsh", "root.failed.sqsh", "rm-root.failed.sqsh"}, "root.sqsh", false,
			"rename root.failed.sqsh -> rm-2-root.failed.sqsh; rename root.trying-0.sqsh -> root.failed.sqsh; remove rm-2-root.failed.sqsh"},
		{"newer staged supersedes trial", []string{"root.sqsh", "root.trying-1.sqsh", "root.try-1.sqsh"}, "root.trying-0.sqsh", true,
			"rename root.trying-1.sqsh -> root.failed.sqsh; rename root.try-1.sqsh -> root.trying-0.sqsh"},
		{"spent trial and staged", []string{"root.sqsh", "root.trying-0.sqsh", "root.try-2.sqsh"}, "root.trying-1.sqsh", true,
			"rename root.trying-0.sqsh -> root.failed.sqsh; rename root.try-2.sqsh -> root.trying-1.sqsh"},
		{"commit in flight, first step", []string{"root.sqsh", "root.next.sqsh", "root.prev.sqsh"}, "root.sqsh", false,
			"rename root.prev.sqsh -> rm-root.prev.sqsh; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh; remove rm-root.prev.sqsh"},
		{"commit in flight, root moved", []string{"root.next.sqsh", "root.prev.sqsh"}, "root.sqsh", false,
			"rename root.next.sqsh -> root.sqsh"},
		{"commit in flight, staged waits", []string{"root.next.sqsh", "root.prev.sqsh", "root.try-1.sqsh"}, "root.trying-0.sqsh", true,
			"rename root.next.sqsh -> root.sqsh; rename root.try-1.sqsh -> root.trying-0.sqsh"},
		{"committed root missing", []string{"root.prev.sqsh"}, "root.prev.sqsh", false, "no change"},
		{"empty store", nil, "", false, "no change"},
		{"leftovers untouched at boot", []string{"root.sqsh", ".lock", "failed.reason", "rm-x", ".stage-y"}, "root.sqsh", false, "no change"},
		{"non-canonical count ignored", []string{"root.sqsh", "root.try-01.sqsh", "root.try-0.sqsh", "root.trying--1.sqsh"}, "root.sqsh", false, "no change"},
		{"name without suffix ignored", []string{"root.sqsh", "root.try-1"}, "root.sqsh", false, "no change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trampoline.Decide(state(tt.names...))
			if got := p.Boot.Name; got != tt.wantBoot {
				t.Errorf("boot: got %q, want %q", got, tt.wantBoot)
			}
			if got := p.Trial; got != tt.wantTrial {
				t.Errorf("trial: got %v, want %v", got, tt.wantTrial)
			}
			if got := p.Transition.String(); got != tt.wantOps {
				t.Errorf("ops:\n got %s\nwant %s", got, tt.wantOps)
			}
		})
	}
}

func TestDecideRecordsFailure(t *testing.T) {
	p := trampoline.Decide(state("root.sqsh", "root.trying-0.sqsh"))
	if len(p.Notes) != 2 || p.Notes[0].File != trampoline.FailedReasonFile || p.Notes[0].Entry != "root.trying-0.sqsh" ||
		p.Notes[1].File != trampoline.BootReasonFile || p.Notes[1].Entry != "root.sqsh" || !strings.Contains(p.Notes[1].Why, "root.trying-0.sqsh") {
		t.Fatalf("notes: got %+v, want failed.reason about root.trying-0.sqsh and boot.reason (root.sqsh boots because of it)", p.Notes)
	}
	if p := trampoline.Decide(state("root.sqsh")); len(p.Notes) != 0 {
		t.Errorf("a plain boot writes notes: %+v", p.Notes)
	}
}

func TestFallback(t *testing.T) {
	tests := []struct {
		name     string
		names    []string
		failed   string
		wantBoot string
		wantOps  string
	}{
		{"trial does not mount", []string{"root.sqsh", "root.prev.sqsh", "root.trying-0.sqsh"}, "root.trying-0.sqsh", "root.sqsh",
			"rename root.trying-0.sqsh -> root.failed.sqsh"},
		{"trial does not mount, no root", []string{"root.prev.sqsh", "root.trying-1.sqsh"}, "root.trying-1.sqsh", "root.prev.sqsh",
			"rename root.trying-1.sqsh -> root.failed.sqsh"},
		{"root does not mount", []string{"root.sqsh", "root.prev.sqsh"}, "root.sqsh", "root.prev.sqsh", "no change"},
		{"prev does not mount", []string{"root.sqsh", "root.prev.sqsh"}, "root.prev.sqsh", "", "no change"},
		{"root does not mount, no prev", []string{"root.sqsh"}, "root.sqsh", "", "no change"},
		{"unknown entry", []string{"root.sqsh"}, "nope.sqsh", "", "no change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := trampoline.Fallback(state(tt.names...), tt.failed, "mount: invalid argument")
			if got := p.Boot.Name; got != tt.wantBoot {
				t.Errorf("boot: got %q, want %q", got, tt.wantBoot)
			}
			if got := p.Transition.String(); got != tt.wantOps {
				t.Errorf("ops:\n got %s\nwant %s", got, tt.wantOps)
			}
		})
	}
}

// The console line of a boot says why it is not a plain one.
func TestDecideWhy(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"root.sqsh"}, "committed root"},
		{[]string{"root.sqsh", "root.next.sqsh"}, "finished an interrupted commit; committed root"},
		{[]string{"root.sqsh", "root.trying-0.sqsh"}, "trial root.trying-0.sqsh booted and never committed (crash, power loss, watchdog reset or reboot without commit), no tries left; committed root"},
		{[]string{"root.sqsh", "root.try-1.sqsh"}, "new image staged: trial boot, 0 left after this one: boots root.trying-0.sqsh, then root.sqsh unless committed"},
	}
	for _, tt := range tests {
		if got := trampoline.Decide(state(tt.names...)).Why; got != tt.want {
			t.Errorf("Decide(%q).Why = %q, want %q", tt.names, got, tt.want)
		}
	}
}

// TestDecideHandMadeConflicts: names that only a hand can make (two trial
// entries, two boot counters) can make a plan's rename find its target
// taken. The plan must then boot a committed root and change nothing, as
// for a store that cannot be changed; never the entry the dropped renames
// would have made (an unconsumed trial booted again at every boot, or a
// name that does not exist), and never the old root over a commit in flight.
func TestDecideHandMadeConflicts(t *testing.T) {
	tests := []struct {
		name     string
		names    []string
		budget   int
		wantBoot string
	}{
		{"two trials and a staged image", []string{"root.sqsh", "root.trying-0.sqsh", "root.trying-1.sqsh", "root.try-2.sqsh"}, 0, "root.sqsh"},
		{"two trials and a staged image, commit in flight", []string{"root.next.sqsh", "root.prev.sqsh", "root.trying-0.sqsh", "root.trying-1.sqsh", "root.try-2.sqsh"}, 0, "root.next.sqsh"},
		{"two counters, commit in flight, staged image", []string{"root.sqsh", "root.next.sqsh", "boots-0", "boots-2", "root.try-1.sqsh"}, 3, "root.next.sqsh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := state(tt.names...)
			p := trampoline.DecideWithBudget(st, tt.budget)
			if p.Boot.Name == "" {
				t.Fatalf("boots nothing (%s)", p.Why)
			}
			// Whatever the plan, what it boots must be there once its ops ran.
			after := st
			for _, op := range p.Ops {
				var err error
				if after, err = after.Apply(op); err != nil {
					t.Fatalf("op %s: %v", op, err)
				}
			}
			if !after.Has(p.Boot.Name) {
				t.Fatalf("boots %s, which is not in the store after the plan's ops %v (%s)", p.Boot.Name, p.Ops, p.Why)
			}
			if len(p.Ops) == 0 && (p.Trial || p.Boot.Name != tt.wantBoot) {
				t.Errorf("no ops, yet boots %s (trial %v), want the committed root %s without changes (%s)", p.Boot.Name, p.Trial, tt.wantBoot, p.Why)
			}
		})
	}
}
