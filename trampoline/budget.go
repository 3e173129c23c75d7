package trampoline

import (
	"fmt"
	"strconv"
	"strings"
)

// The boot budget of the committed root (DESIGN.md, invariant 7): a root
// that keeps failing to boot well, its trial long over (damaged blocks of an
// image the kernel mounts, an init that segfaults, a system that reboots
// within seconds), falls back to root.prev after Budget boots in a row.
//
// State: one empty file in the slot directory, "boots-K": K committed boots
// were started since the last good mark. Every transition of it is one
// rename, like every other state change of the store:
//
//   - a boot of the committed root renames boots-K to boots-(K+1) before it
//     mounts anything (so a crash or a panic of that boot has counted);
//   - a good mark (mark-good, commit --if-trial in a committed boot, the
//     keeper after overlayupd.good_after, an orderly shutdown) renames it to
//     boots-0;
//   - a new committed root (commit, rollback, an interrupted commit finished
//     at boot) renames it to boots-0;
//   - at boot, with K >= Budget and a root.prev, the counter restarts at
//     boots-1 for the root that will boot, then the two roots are exchanged
//     (one RENAME_EXCHANGE: no instant without a committed root). The failing
//     root is root.prev: 'overlayupd rollback' brings it back.
//
// A store without the file (made before the budget existed) gets boots-0 from
// the boot path before the decision (EnsureBootCounter); with Budget 0 the
// file is not touched at all.
const BootCountPrefix = "boots-"

// DefaultBootBudget is overlayupd.boot_budget's default.
const DefaultBootBudget = 3

// MaxBootBudget bounds overlayupd.boot_budget.
const MaxBootBudget = 1000

// BootCountName is the counter file for k boots without a good mark.
func BootCountName(k int) string { return BootCountPrefix + strconv.Itoa(k) }

// parseBootCount reads k from a counter file's name.
func parseBootCount(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, BootCountPrefix)
	if !ok || s == "" || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	k, err := strconv.Atoi(s)
	return k, err == nil && k >= 0
}

// BootCount returns the counter file and its count; ok is false when the
// store has none. Of several (only by hand), the highest count wins: a
// confusing store errs towards the fallback.
func (s State) BootCount() (name string, k int, ok bool) {
	for n := range s.names {
		if c, isCount := parseBootCount(n); isCount && (!ok || c > k) {
			name, k, ok = n, c, true
		}
	}
	return name, k, ok
}

// resetBootCount marks the committed root's boots good: boots-K to boots-0.
func (b *builder) resetBootCount() {
	if _, k, ok := b.st.BootCount(); ok && k > 0 {
		b.setBootCount(k, 0)
	}
}

// setBootCount renames the counter boots-k to boots-to. Of several
// counters (only by hand), one named boots-to is discarded first: the
// rename must not find its target taken, which would stop the boot's
// count and every command on the store.
func (b *builder) setBootCount(k, to int) {
	from, name := BootCountName(k), BootCountName(to)
	if from == name { // overlayupd.boot_budget=1: a fallback's count is 1 already
		return
	}
	if b.st.Has(name) {
		b.discard(name)
	}
	b.rename(from, name)
}

// spendBootBudget is the committed root's share of a boot plan under a boot
// budget: it counts this boot, or, when the root has had its budget of boots
// without a good mark and a previous root exists, exchanges the two. It
// returns the why of a fallback ("" when there was none).
func (b *builder) spendBootBudget(root Entry, budget int) string {
	_, k, ok := b.st.BootCount()
	if budget <= 0 || !ok {
		return ""
	}
	prev, hasPrev := b.st.Find(RolePrevious)
	if k < budget || !hasPrev {
		if k < MaxBootBudget {
			b.setBootCount(k, k+1)
		}
		return ""
	}
	// Order: the count first, then the exchange. A crash between them
	// leaves the failing root committed with a fresh count: it falls back
	// again after its budget. The other order would, after a crash between,
	// exchange the two back at the next boot.
	b.setBootCount(k, 1)
	b.exchange(root.Name, prev.Name)
	return fmt.Sprintf("committed root %s did not boot well %d times in a row (no good mark: mark-good, commit --if-trial, an orderly shutdown, or staying up for overlayupd.good_after); "+
		"falling back to the previous root, now %s; the one that failed is %s ('overlayupd rollback' brings it back)", root.Name, k, root.Name, prev.Name)
}
