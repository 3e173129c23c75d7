package trampoline

import "fmt"

// BootPlan says what the trampoline does at boot: run the ops (each one rename
// plus a directory fsync) and only then mount Boot. Running the ops before the
// mount is what makes a trial durable before it starts: the try is consumed
// first, so a crash during the trial cannot give it another boot (gokrazy's
// try-boot flag, mender's bound).
type BootPlan struct {
	Transition
	Source   Entry  // the entry that boots, under its name before the ops
	Boot     Entry  // the entry to mount, under its name after the ops; Name "" when none can boot
	Trial    bool   // Boot is an uncommitted trial
	Fallback string // Trial: the entry that boots if the trial never commits
	Why      string // one line for the console and /dev/kmsg
	After    State  // the state once the ops ran
}

func (p BootPlan) String() string {
	if p.Boot.Name == "" {
		return fmt.Sprintf("boot: nothing (%s)", p.Why)
	}
	return fmt.Sprintf("boot %s after [%s] (%s)", p.Boot.Name, p.Transition, p.Why)
}

// Decide is the boot-time decision, a pure function of the slot directory:
//
//  1. root.next exists: finish the interrupted commit (roll forward).
//  2. root.trying-0: the trial used its last boot and never committed (crash,
//     power loss, watchdog, reboot without commit, panic): it becomes
//     root.failed, with the reason noted.
//  3. root.trying-K, K>0, with a newer root.try-N staged: the staged image
//     supersedes the trial, which becomes root.failed.
//  4. root.trying-K, K>0: consume a try (rename to root.trying-(K-1)), boot it.
//  5. root.try-N: start the trial (rename to root.trying-(N-1)), boot it.
//  6. else boot root; if root is missing, root.prev; else nothing (Boot.Name "").
func Decide(st State) BootPlan { return DecideBoot(st, 0, LastBoot{}) }

// DecideWithBudget is Decide with the committed root's boot budget (see
// budget.go): with budget > 0, a plain boot of the committed root counts
// itself, and one over the budget falls back to root.prev.
func DecideWithBudget(st State, budget int) BootPlan { return DecideBoot(st, budget, LastBoot{}) }

// LastBoot is what the trampoline knows of how the previous boot ended,
// beyond the names in the slot directory.
type LastBoot struct {
	// WatchdogReset: the watchdog driver reports that it reset the board
	// (bootstatus WDIOF_CARDRESET). In a trial that means the trial hung,
	// or did not commit within its deadline, and the keeper let it reset.
	WatchdogReset bool
}

// DecideAfter is Decide with what is known of the last boot: a trial ended
// by a watchdog reset is recorded as such.
func DecideAfter(st State, last LastBoot) BootPlan { return DecideBoot(st, 0, last) }

// DecideBoot is the whole boot decision: the boot budget and the last boot.
func DecideBoot(st State, budget int, last LastBoot) BootPlan {
	b := newBuilder(st)
	b.budget = budget
	p := b.decide(last)
	if b.err != nil {
		// An op that is not valid on the state the builder simulates:
		// only names a hand made can cause one (two trial entries, two
		// boot counters: a rename finds its target taken). Boot a
		// committed root and change nothing, as for a store that cannot
		// be changed: never the entry the dropped ops would have made (an
		// unconsumed trial at every boot, or a name that is not there),
		// nor the old root while root.next is committed.
		return ReadOnlyPlan(st, "internal error: "+b.err.Error())
	}
	return p
}

func (b *builder) decide(last LastBoot) BootPlan {
	prefix := "" // why this is not a plain boot, for the console
	if b.finishCommit() {
		prefix = "finished an interrupted commit"
	}
	b.settleLayers()
	if t, ok := b.st.Find(RoleTrying); ok {
		_, staged := b.st.Find(RoleStaged)
		var why string
		switch {
		case t.Tries == 0 && last.WatchdogReset:
			why = fmt.Sprintf("trial %s: %s, no tries left", t.Name, WatchdogResetWhy)
		case t.Tries == 0:
			why = fmt.Sprintf("trial %s booted and never committed (crash, power loss, watchdog reset or reboot without commit), no tries left", t.Name)
		case staged:
			why = fmt.Sprintf("trial %s superseded by a newer staged image", t.Name)
		default:
			again := fmt.Sprintf("trial not committed yet: another try, %d left after this one", t.Tries-1)
			if last.WatchdogReset {
				again = WatchdogResetWhy + "; " + again
			}
			return b.trialPlan(t, join(prefix, again))
		}
		b.fail(t, why)
		prefix = join(prefix, why)
	}
	if s, ok := b.st.Find(RoleStaged); ok {
		return b.trialPlan(s, join(prefix, fmt.Sprintf("new image staged: trial boot, %d left after this one", s.Tries-1)))
	}
	// Why this boot is not the plain one (a failed trial, a finished
	// commit) goes to boot.reason too: status shows it as the last boot's.
	return b.committedPlan(prefix, true)
}

// trialPlan consumes one try of e and boots it.
func (b *builder) trialPlan(e Entry, why string) BootPlan {
	to := b.name(RoleTrying, e.Tries-1)
	b.rename(e.Name, to)
	fallback := ""
	for _, r := range []Role{RoleCommitted, RolePrevious} {
		if f, ok := b.st.Find(r); ok && fallback == "" {
			fallback = f.Name
		}
	}
	why = fmt.Sprintf("%s: boots %s", why, to)
	if fallback != "" {
		why += ", then " + fallback + " unless committed"
	}
	p := b.plan(e, why)
	p.Boot = ParseName(to, b.st.Suffix)
	p.Trial, p.Fallback = true, fallback
	return p
}

// committedPlan boots root, or root.prev when root is missing. prefix, when
// set, says why this is not the plan that was wanted; record writes it to
// boot.reason too.
func (b *builder) committedPlan(prefix string, record bool) BootPlan {
	for _, r := range []Role{RoleCommitted, RolePrevious} {
		if e, ok := b.st.Find(r); ok {
			if r == RoleCommitted {
				if fb := b.spendBootBudget(e, b.budget); fb != "" {
					prefix, record = join(prefix, fb), true
				}
			}
			why := "committed root"
			if r == RolePrevious {
				why = "committed root missing: previous root"
			}
			if prefix != "" {
				why = prefix + "; " + why
			}
			if prefix != "" && record || r == RolePrevious {
				b.notes = append(b.notes, Note{File: BootReasonFile, Entry: e.Name, Why: why})
			}
			p := b.plan(e, why)
			p.Boot = e
			return p
		}
	}
	why := "no root image in the store"
	if prefix != "" {
		why = prefix + "; " + why
	}
	return b.plan(Entry{}, why)
}

func (b *builder) plan(src Entry, why string) BootPlan {
	tr, err := b.transition()
	if err != nil {
		// Only by hand-made names; DecideBoot replaces the plan.
		return BootPlan{Why: "internal error: " + err.Error(), After: b.st}
	}
	return BootPlan{Transition: tr, Source: src, Why: why, After: b.st}
}

// Fallback is the plan after the entry failed could not be mounted or booted
// (why says how). st is the state after the previous plan's ops. A failed
// trial becomes root.failed and the committed root boots; a failed committed
// root leaves the store alone and boots root.prev this once; after that,
// nothing is left (Boot.Name "") and the caller falls back to classic mode.
func Fallback(st State, failed, why string) BootPlan {
	b := newBuilder(st)
	e := ParseName(failed, st.Suffix)
	switch {
	case !st.Has(failed):
		return b.plan(Entry{}, fmt.Sprintf("%s failed (%s) and is not in the store", failed, why))
	case e.Role == RoleTrying || e.Role == RoleStaged:
		b.fail(e, fmt.Sprintf("trial %s did not boot: %s", failed, why))
		return b.committedPlan(fmt.Sprintf("trial %s did not boot (%s)", failed, why), true)
	case e.Role == RoleCommitted:
		if p, ok := st.Find(RolePrevious); ok {
			why = fmt.Sprintf("committed root %s did not boot (%s); previous root", failed, why)
			b.notes = append(b.notes, Note{File: BootReasonFile, Entry: p.Name, Why: why})
			plan := b.plan(p, why)
			plan.Boot = p
			return plan
		}
	}
	return b.plan(Entry{}, fmt.Sprintf("%s did not boot (%s); no other root to try", failed, why))
}

// WatchdogResetWhy is how a trial ended by the watchdog is recorded.
const WatchdogResetWhy = "watchdog reset or hang: the trial did not commit within its deadline"

// join joins the parts of a boot's reason that are not empty with "; ".
func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
