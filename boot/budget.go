package boot

import (
	"os"
	"strconv"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// BudgetKey sets the committed root's boot budget on the kernel command line.
const BudgetKey = "overlayupd.boot_budget"

// DefaultBootBudget is the budget without BudgetKey. It stays 0 (off) until
// the trampoline's keeper marks good boots by itself (overlayupd.good_after):
// without a good mark, a healthy device would fall back after a few
// reboots.
var DefaultBootBudget = 0

// ParseBootBudget decides the boot budget from the kernel command line: a
// count of boots from 0 (off) to trampoline.MaxBootBudget. Anything else
// keeps the default, with a warning to log.
func ParseBootBudget(cmdline string) (budget int, warning string) {
	v, ok := kcmdline.Lookup(kcmdline.Split(cmdline), BudgetKey)
	if !ok {
		return DefaultBootBudget, ""
	}
	n, err := strconv.Atoi(v)
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
func bootBudget(log *overlay.Log, s *trampoline.Store) int {
	b, _ := os.ReadFile(overlay.CmdlinePath)
	budget, warning := ParseBootBudget(string(b))
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
