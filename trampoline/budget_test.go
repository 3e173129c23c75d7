package trampoline

import (
	"strings"
	"testing"
)

// TestBootBudget: the committed root's boots count themselves; one over the
// budget with a previous root exchanges the two; good marks, commits and
// rollbacks start the count again.
func TestBootBudget(t *testing.T) {
	const sfx = ".sqsh"
	for _, c := range []struct {
		name   string
		names  []string
		budget int
		after  string // the names after the plan's ops
		boot   string
		reason bool // a boot.reason note
	}{
		{"off: nothing counted", []string{"root.sqsh", "boots-5", "root.prev.sqsh"}, 0, "boots-5 root.prev.sqsh root.sqsh", "root.sqsh", false},
		{"first boot counts", []string{"root.sqsh", "boots-0"}, 3, "boots-1 root.sqsh", "root.sqsh", false},
		{"third boot counts", []string{"root.sqsh", "boots-2", "root.prev.sqsh"}, 3, "boots-3 root.prev.sqsh root.sqsh", "root.sqsh", false},
		{"over the budget: fall back", []string{"root.sqsh", "boots-3", "root.prev.sqsh"}, 3, "boots-1 root.prev.sqsh root.sqsh", "root.sqsh", true},
		{"over the budget, nothing to fall back to", []string{"root.sqsh", "boots-3"}, 3, "boots-4 root.sqsh", "root.sqsh", false},
		{"budget 1: the first boot counts", []string{"root.sqsh", "boots-0", "root.prev.sqsh"}, 1, "boots-1 root.prev.sqsh root.sqsh", "root.sqsh", false},
		{"budget 1: the second falls back, the count stays 1", []string{"root.sqsh", "boots-1", "root.prev.sqsh"}, 1, "boots-1 root.prev.sqsh root.sqsh", "root.sqsh", true},
		{"budget 1000 (the most): falls back", []string{"root.sqsh", "boots-1000", "root.prev.sqsh"}, 1000, "boots-1 root.prev.sqsh root.sqsh", "root.sqsh", true},
		{"the count stops at 1000", []string{"root.sqsh", "boots-1000"}, 3, "boots-1000 root.sqsh", "root.sqsh", false},
		{"no counter (an old store): nothing counted", []string{"root.sqsh", "root.prev.sqsh"}, 3, "root.prev.sqsh root.sqsh", "root.sqsh", false},
		{"a trial does not count", []string{"root.sqsh", "boots-2", "root.try-1.sqsh"}, 3, "boots-2 root.sqsh root.trying-0.sqsh", "root.trying-0.sqsh", false},
		{"a failed trial's fallback counts", []string{"root.sqsh", "boots-1", "root.trying-0.sqsh"}, 3, "boots-2 root.failed.sqsh root.sqsh", "root.sqsh", true},
		{"an interrupted commit: the new root starts at 1", []string{"root.sqsh", "root.next.sqsh", "boots-2"}, 3, "boots-1 root.prev.sqsh root.sqsh", "root.sqsh", true},
		{"several counters: the highest", []string{"root.sqsh", "boots-1", "boots-3", "root.prev.sqsh"}, 3, "boots-1 boots-1x", "", false},
	} {
		if strings.HasPrefix(c.name, "several") {
			st := NewState(sfx, c.names...)
			if n, k, ok := st.BootCount(); !ok || k != 3 || n != "boots-3" {
				t.Errorf("%s: BootCount = %s %d %v", c.name, n, k, ok)
			}
			continue
		}
		p := DecideWithBudget(NewState(sfx, c.names...), c.budget)
		if got := strings.Join(p.After.Names(), " "); got != c.after {
			t.Errorf("%s: after %v: %s, want %s", c.name, p.Ops, got, c.after)
		}
		if p.Boot.Name != c.boot {
			t.Errorf("%s: boots %q, want %q", c.name, p.Boot.Name, c.boot)
		}
		exchanged := false
		for _, op := range p.Ops {
			exchanged = exchanged || op.Kind == OpExchange && op.From == "root.sqsh" && op.To == "root.prev.sqsh"
		}
		if want := strings.Contains(c.name, ": fall back") || strings.Contains(c.name, "falls back"); exchanged != want {
			t.Errorf("%s: exchange of root and root.prev %v, want %v (ops %v: %s)", c.name, exchanged, want, p.Ops, p.Why)
		}
		hasReason := false
		for _, n := range p.Notes {
			hasReason = hasReason || n.File == BootReasonFile
		}
		if hasReason != c.reason {
			t.Errorf("%s: boot.reason note %v, want %v (%s)", c.name, hasReason, c.reason, p.Why)
		}
	}
}

// TestBootBudgetFallbackIsOneExchange: the fallback never leaves an instant
// without a committed root (one exchange), and its count goes first.
func TestBootBudgetFallbackIsOneExchange(t *testing.T) {
	p := DecideWithBudget(NewState(".sqsh", "root.sqsh", "boots-3", "root.prev.sqsh"), 3)
	if len(p.Ops) != 2 || p.Ops[0].From != "boots-3" || p.Ops[0].To != "boots-1" || p.Ops[1].Kind != OpExchange {
		t.Fatalf("ops %v, want the counter, then the exchange of the roots", p.Ops)
	}
	if !strings.Contains(p.Why, "did not boot well 3 times") {
		t.Errorf("why %q", p.Why)
	}
}

// TestBootBudgetResets: what starts a committed root's budget again.
func TestBootBudgetResets(t *testing.T) {
	for _, c := range []struct {
		name  string
		names []string
		ev    Event
		after string
	}{
		{"mark good", []string{"root.sqsh", "boots-2"}, Event{Kind: EvMarkGood}, "boots-0 root.sqsh"},
		{"mark good at 0: no op", []string{"root.sqsh", "boots-0"}, Event{Kind: EvMarkGood}, "boots-0 root.sqsh"},
		{"commit", []string{"root.sqsh", "boots-2", "root.trying-0.sqsh"}, Event{Kind: EvCommit, Booted: "root.trying-0.sqsh"}, "boots-0 root.prev.sqsh root.sqsh"},
		{"rollback to root.prev", []string{"root.sqsh", "boots-2", "root.prev.sqsh"}, Event{Kind: EvRollback}, "boots-0 root.prev.sqsh root.sqsh"},
		{"rollback of a trial keeps the count", []string{"root.sqsh", "boots-2", "root.trying-0.sqsh"}, Event{Kind: EvRollback}, "boots-2 failed.reason root.failed.sqsh root.sqsh"},
	} {
		tr, err := Next(NewState(".sqsh", c.names...), c.ev)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		st := NewState(".sqsh", c.names...)
		for _, op := range tr.Ops {
			if st, err = st.Apply(op); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		for _, n := range tr.Notes {
			st.names[n.File] = true
		}
		if got := strings.Join(st.Names(), " "); got != c.after {
			t.Errorf("%s: after %v: %s, want %s", c.name, tr.Ops, got, c.after)
		}
	}
}

// TestBootBudgetSeveralCounters: of several counters (only by hand), the
// highest counts, as BootCount says; a count that goes down (a fallback, a
// good mark, a new committed root) must not find its target taken, or the
// boot would not count and every command (commit, rollback, mark-good)
// would fail on the store: the counter there is discarded first.
func TestBootBudgetSeveralCounters(t *testing.T) {
	const sfx = ".sqsh"
	for _, c := range []struct {
		name   string
		names  []string
		budget int    // a boot under this budget, or an event
		ev     *Event // the event, when not a boot
		after  string
		boot   string
	}{
		{"over the budget: fall back", []string{"root.sqsh", "boots-1", "boots-3", "root.prev.sqsh"}, 3, nil,
			"boots-1 root.prev.sqsh root.sqsh", "root.sqsh"},
		{"a boot counts from the highest", []string{"root.sqsh", "boots-0", "boots-1", "root.prev.sqsh"}, 3, nil,
			"boots-0 boots-2 root.prev.sqsh root.sqsh", "root.sqsh"},
		{"budget 1: fall back", []string{"root.sqsh", "boots-0", "boots-1", "root.prev.sqsh"}, 1, nil,
			"boots-0 boots-1 root.prev.sqsh root.sqsh", "root.sqsh"},
		{"an interrupted commit: the new root starts at 1", []string{"root.sqsh", "root.next.sqsh", "boots-0", "boots-2"}, 3, nil,
			"boots-1 root.prev.sqsh root.sqsh", "root.sqsh"},
		{"mark good", []string{"root.sqsh", "boots-0", "boots-2"}, 0, &Event{Kind: EvMarkGood},
			"boots-0 root.sqsh", ""},
		{"commit", []string{"root.sqsh", "boots-0", "boots-2", "root.trying-0.sqsh"}, 0, &Event{Kind: EvCommit, Booted: "root.trying-0.sqsh"},
			"boots-0 root.prev.sqsh root.sqsh", ""},
		{"rollback to root.prev", []string{"root.sqsh", "boots-0", "boots-3", "root.prev.sqsh"}, 0, &Event{Kind: EvRollback},
			"boots-0 root.prev.sqsh root.sqsh", ""},
	} {
		st := NewState(sfx, c.names...)
		var tr Transition
		if c.ev == nil {
			p := DecideWithBudget(st, c.budget)
			if p.Boot.Name != c.boot || strings.Contains(p.Why, "internal error") {
				t.Errorf("%s: boots %q (%s), want %q", c.name, p.Boot.Name, p.Why, c.boot)
			}
			tr = p.Transition
		} else {
			var err error
			if tr, err = Next(st, *c.ev); err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
		}
		var err error
		for _, op := range tr.Ops {
			if st, err = st.Apply(op); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if got := strings.Join(st.Names(), " "); got != c.after {
			t.Errorf("%s: after %v: %s, want %s", c.name, tr.Ops, got, c.after)
		}
	}
}
