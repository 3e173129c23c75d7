package boot

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// BudgetKey sets the committed root's boot budget on the kernel command line.
const BudgetKey = "overlayupd.boot_budget"

// GoodAfterKey sets how long a committed boot must stay up to be marked good
// by the keeper (an orderly shutdown before that marks it too).
const GoodAfterKey = "overlayupd.good_after"

// DefaultGoodAfter is GoodAfterKey's default.
const DefaultGoodAfter = 5 * time.Minute

// ParseGoodAfter decides GoodAfterKey: a duration from 0 (mark the boot
// good as soon as init runs) to a day, as the keeper parses durations
// (600, 90s, 5m). Anything else keeps the default, with a warning.
func ParseGoodAfter(cmdline string) (time.Duration, string) {
	v, ok := kcmdline.Lookup(kcmdline.Kernel(cmdline), GoodAfterKey)
	if !ok {
		return DefaultGoodAfter, ""
	}
	d, err := keeper.ParseDuration(v)
	if err != nil || d < 0 || d > 24*time.Hour {
		return DefaultGoodAfter, GoodAfterKey + "=" + strconv.Quote(v) + ": not a duration from 0 to 24h (600, 90s, 5m); using " + keeper.FormatDuration(DefaultGoodAfter)
	}
	return d, ""
}

// startGoodMark leaves the keeper that marks this committed boot good:
// called once the committed root is laid and pivoted into, so a root that
// did not even mount (and gave way to root.prev for this boot) never earns
// the mark. The store is at trampoline.StoreMount by then. It reports
// whether the boot is marked good already (overlayupd.good_after=0).
func startGoodMark(log *overlay.Log, count, cmdline string) (marked bool) {
	after, warning := ParseGoodAfter(cmdline)
	if warning != "" {
		log.Warnf("%s", warning)
	}
	slot := filepath.Join(trampoline.StoreMount, trampoline.SlotDir)
	_, err := keeper.StartGoodMark(slot, count, after)
	switch {
	case err != nil && after == 0:
		log.Warnf("boot budget: could not mark this boot good (%v): run 'overlayupd mark-good' once the system is up", err)
	case err != nil:
		log.Warnf("boot budget: no keeper to mark this boot good (%v): run 'overlayupd mark-good' once the system is up", err)
	case after == 0:
		log.Infof("boot budget: this boot is marked good (%s=0)", GoodAfterKey)
		return true
	}
	return false
}

// DefaultBootBudget is the budget without BudgetKey: on, with
// trampoline.DefaultBootBudget boots. A healthy device never spends it: the
// keeper marks each committed boot good after overlayupd.good_after or at
// an orderly shutdown, and mark-good or commit --if-trial do so at once.
var DefaultBootBudget = trampoline.DefaultBootBudget

// ParseBootBudget decides the boot budget from the kernel command line: a
// count of boots from 0 (off) to trampoline.MaxBootBudget. Anything else
// keeps the default, with a warning to log.
func ParseBootBudget(cmdline string) (budget int, warning string) {
	v, ok := kcmdline.Lookup(kcmdline.Kernel(cmdline), BudgetKey)
	if !ok {
		return DefaultBootBudget, ""
	}
	n, err := strconv.Atoi(v)
	if strings.Trim(v, "0123456789") != "" { // digits only: Atoi took "+3" and "-0"
		err = strconv.ErrSyntax
	}
	if err != nil || n < 0 || n > trampoline.MaxBootBudget {
		return DefaultBootBudget, BudgetKey + "=" + strconv.Quote(v) + ": not a count of boots from 0 (off) to " +
			strconv.Itoa(trampoline.MaxBootBudget) + "; using " + strconv.Itoa(DefaultBootBudget)
	}
	return n, ""
}

// bootBudget reads the budget for this boot and, when it is on, makes sure
// the store has its counter (a store made before the budget existed): one
// file, boots-0, written and renamed into place. Any doubt turns the budget
// off for this boot: it must never stop a boot.
func bootBudget(log *overlay.Log, s *trampoline.Store, cmdline string) int {
	budget, warning := ParseBootBudget(cmdline)
	if warning != "" {
		log.Warnf("%s", warning)
	}
	if budget == 0 {
		return 0
	}
	st, err := s.State()
	if err != nil {
		return 0
	}
	if _, _, ok := st.BootCount(); ok {
		return budget
	}
	if err := s.EnsureBootCount(); err != nil {
		log.Warnf("store: boot budget off for this boot: %v", err)
		return 0
	}
	return budget
}
