// Package conformance owns the slot-protocol test suite that every trampoline
// backend (squashfs image files, btrfs subvolumes) must pass: the rename
// primitives, and every state × event × crash point checked against the
// protocol's invariants by simulated boots.
package conformance

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

// Backend is a trampoline.Backend that tests can fill: Make creates an entry
// holding label (an image file whose contents are label, a subvolume with a
// label file), Label reads it back.
type Backend interface {
	trampoline.Backend
	Make(name, label string) error
	Label(name string) (string, error)
}

// Run runs the suite; newBackend returns an empty slot directory, and must be
// safe to call from parallel subtests.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Run("primitives", func(t *testing.T) { testPrimitives(t, newBackend(t)) })
	t.Run("events", func(t *testing.T) { testEvents(t, newBackend) })
	t.Run("boot", func(t *testing.T) { testBootCrashes(t, newBackend) })
	t.Run("fallback", func(t *testing.T) { testFallback(t, newBackend(t)) })
	t.Run("init", func(t *testing.T) { testInit(t, newBackend) })
	t.Run("budget", func(t *testing.T) { testBudgetCrashes(t, newBackend) })
	t.Run("layers", func(t *testing.T) { testLayerEvents(t, newBackend) })
	t.Run("layer-boot", func(t *testing.T) { testLayerBootCrashes(t, newBackend) })
}

// RunPrimitives checks only the rename primitives, on an empty backend.
func RunPrimitives(t *testing.T, b Backend) { testPrimitives(t, b) }

func testPrimitives(t *testing.T, b Backend) {
	must(t, b.Make("a", "A"))
	must(t, b.Make("b", "B"))
	must(t, b.Rename("a", "c", trampoline.RenameNoReplace))
	if err := b.Rename("c", "b", trampoline.RenameNoReplace); !errors.Is(err, os.ErrExist) {
		t.Errorf("noreplace onto an existing entry: got %v, want an os.ErrExist error", err)
	}
	must(t, b.Rename("c", "b", trampoline.RenameExchange))
	if got := labels(t, b); got["c"] != "B" || got["b"] != "A" || len(got) != 2 {
		t.Errorf("after exchange: got %v, want b:A c:B", got)
	}
	if err := b.Rename("c", "zz", trampoline.RenameExchange); err == nil {
		t.Error("exchange with a missing entry: got nil error")
	}
	if err := b.Rename("missing", "zz", trampoline.RenameNoReplace); err == nil {
		t.Error("rename of a missing entry: got nil error")
	}
	must(t, b.Remove("c"))
	must(t, b.Remove("c"))
	must(t, b.SyncDir())
	if got := labels(t, b); len(got) != 1 || got["b"] != "A" {
		t.Errorf("after remove: got %v, want b:A", got)
	}
}

// events lists the commands tried on a setup.
func events(l Labels, suffix string) []trampoline.Event {
	booted := ""
	if e, ok := l.State(suffix).Find(trampoline.RoleTrying); ok {
		booted = e.Name
	}
	return []trampoline.Event{
		{Kind: trampoline.EvStage, Stage: ".stage-new", Tries: 1},
		{Kind: trampoline.EvStage, Stage: ".stage-new", Tries: 2},
		{Kind: trampoline.EvCommit, Booted: booted},
		{Kind: trampoline.EvCommit, Force: true},
		{Kind: trampoline.EvRollback},
		{Kind: trampoline.EvFail},
		{Kind: trampoline.EvGC},
		{Kind: trampoline.EvKeep, Stage: ".stage-new", Why: "update failed"},
	}
}

func testEvents(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	for _, s := range Setups() {
		for _, ev := range events(s.Labels(sfx), sfx) {
			name := fmt.Sprintf("%s/%s", s, ev.Kind)
			if ev.Kind == trampoline.EvStage {
				name += fmt.Sprintf("-%d", ev.Tries)
			}
			if ev.Force {
				name += "-force"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel() // fsync-bound on real disks: overlap the waits
				testEvent(t, newBackend, s, ev)
			})
		}
	}
}

func testEvent(t *testing.T, newBackend func(t *testing.T) Backend, s Setup, ev trampoline.Event) {
	sfx := newBackend(t).Suffix()
	before := s.Labels(sfx)
	if ev.Kind == trampoline.EvStage || ev.Kind == trampoline.EvKeep {
		before[".stage-new"] = "new"
	}
	tr, err := trampoline.Next(before.State(sfx), ev)
	if err != nil {
		return // a refusal changes nothing; the unit tests check which are refused
	}
	after, err := before.Run(tr.Ops)
	if err != nil {
		t.Fatalf("transition %s is invalid on %v: %v", tr, before, err)
	}
	settled, _ := before.Run(trampoline.Settle(before.State(sfx)).Ops)
	beforeBoot, _, _ := before.Boot(sfx)
	afterBoot, _, _ := after.Boot(sfx)
	budget := before.Budget(sfx)
	for k, v := range after.Budget(sfx) {
		budget[k] = max(budget[k], v)
	}
	for i := 0; i <= len(tr.Ops); i++ {
		b := newBackend(t)
		populate(t, b, before)
		if err := trampoline.Execute(b, tr.Ops[:i]); err != nil {
			t.Fatalf("execute %s: %v", tr, err)
		}
		want, _ := before.Run(tr.Ops[:i])
		if got := labels(t, b); !equal(got, want) {
			t.Fatalf("backend after %d ops: got %v, want %v", i, got, want)
		}
		where := fmt.Sprintf("crash after step %d of [%s]", i, tr)
		if !want.State(sfx).HasCommitted() {
			t.Fatalf("%s: no committed root (invariant 1): %v", where, want)
		}
		boots := bootLoop(t, b, budget, where)
		first := boots[0]
		if first.label != beforeBoot && first.label != afterBoot {
			t.Errorf("%s: first boot %q, want %q (state before) or %q (state after)", where, first.label, beforeBoot, afterBoot)
		}
		if ev.Kind == trampoline.EvCommit && i >= 1 {
			checkCommitted(t, where, before, settled, first, sfx)
		}
		if i == len(tr.Ops) {
			checkDone(t, ev, settled, before, want, first, beforeBoot, sfx)
		}
	}
}

// checkCommitted: once a commit has made one step, the trial is committed
// (invariant 3: never a mix, never nothing).
func checkCommitted(t *testing.T, where string, before, settled Labels, first boot, sfx string) {
	t.Helper()
	trial := settled.Role(sfx, trampoline.RoleTrying)
	switch {
	case trial != "":
	case before.Role(sfx, trampoline.RoleCommitting) != "":
		trial = settled.Role(sfx, trampoline.RoleCommitted) // finishing the interrupted commit was the commit
	default:
		trial = settled.Role(sfx, trampoline.RoleStaged) // --force of a staged image
	}
	if got := first.after.Role(sfx, trampoline.RoleCommitted); got != trial {
		t.Errorf("%s: committed root after boot holds %q, want the trial %q (invariant 3)", where, got, trial)
	}
}

// checkDone: what a command reported as done survives the next boot (invariant 6).
func checkDone(t *testing.T, ev trampoline.Event, settled, before, after Labels, first boot, beforeBoot, sfx string) {
	t.Helper()
	r := func(l Labels, role trampoline.Role) string { return l.Role(sfx, role) }
	switch ev.Kind {
	case trampoline.EvStage:
		if first.label != "new" || !first.plan.Trial || first.plan.Boot.Tries != ev.Tries-1 {
			t.Errorf("after stage: first boot %q trial=%v tries left %d, want trial of new with %d left", first.label, first.plan.Trial, first.plan.Boot.Tries, ev.Tries-1)
		}
	case trampoline.EvRollback:
		trial := r(settled, trampoline.RoleTrying) != "" || r(settled, trampoline.RoleStaged) != ""
		want := r(settled, trampoline.RoleCommitted)
		if !trial {
			want = r(settled, trampoline.RolePrevious)
		}
		if first.label != want || first.plan.Trial {
			t.Errorf("after rollback: first boot %q (trial %v), want %q", first.label, first.plan.Trial, want)
		}
	case trampoline.EvFail:
		trial := r(settled, trampoline.RoleTrying)
		if first.label == trial || r(first.after, trampoline.RoleFailed) != trial {
			t.Errorf("after fail: first boot %q, failed %q, want the trial %q failed and not booted", first.label, r(first.after, trampoline.RoleFailed), trial)
		}
	case trampoline.EvKeep:
		if first.label != beforeBoot || r(after, trampoline.RoleFailed) != "new" {
			t.Errorf("after keep: first boot %q, failed %q; want %q as before, and new kept as failed", first.label, r(after, trampoline.RoleFailed), beforeBoot)
		}
	case trampoline.EvGC:
		if first.label != beforeBoot {
			t.Errorf("after gc: first boot %q, want %q as before", first.label, beforeBoot)
		}
		for name := range first.after {
			e := trampoline.ParseName(name, sfx)
			if e.Role == trampoline.RoleRemoving || e.Role == trampoline.RoleStaging ||
				(e.Role == trampoline.RoleFailed && r(before, trampoline.RoleTrying) == "") {
				t.Errorf("after gc: %s left over", name)
			}
		}
	}
}

type boot struct {
	label string
	plan  trampoline.BootPlan
	after Labels // the store once the plan's ops ran
}

// bootLoop boots the store again and again, every trial crashing without a
// commit, until a committed root boots. It checks invariant 1 before each boot
// and invariant 2 (no label boots as a trial more than its budget).
func bootLoop(t *testing.T, b Backend, budget map[string]int, where string) []boot {
	t.Helper()
	var boots []boot
	trials := map[string]int{}
	for n := 0; n < 2*len(budget)+2*sum(budget)+3; n++ {
		st, _, err := trampoline.LoadState(b)
		must(t, err)
		if !st.HasCommitted() {
			t.Fatalf("%s: boot %d: no committed root (invariant 1): %v", where, n, st.Names())
		}
		plan := trampoline.Decide(st)
		if err := trampoline.Execute(b, plan.Ops); err != nil {
			t.Fatalf("%s: boot %d: %s: %v", where, n, plan, err)
		}
		if plan.Boot.Name == "" {
			t.Fatalf("%s: boot %d boots nothing: %s", where, n, plan)
		}
		label, err := b.Label(plan.Boot.Name)
		must(t, err)
		boots = append(boots, boot{label: label, plan: plan, after: labels(t, b)})
		if !plan.Trial {
			if again := trampoline.Decide(plan.After); len(again.Ops) != 0 || again.Boot != plan.Boot {
				t.Errorf("%s: boot after a committed boot is not the same: %s then %s", where, plan, again)
			}
			return boots
		}
		if trials[label]++; trials[label] > budget[label] {
			t.Fatalf("%s: %q booted as a trial %d times, budget %d (invariant 2)", where, label, trials[label], budget[label])
		}
	}
	t.Fatalf("%s: no committed boot after %d boots", where, len(boots))
	return nil
}

// testBootCrashes crashes after every step of every boot-time plan, then boots
// until a committed root boots.
func testBootCrashes(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	for _, s := range Setups() {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			before := s.Labels(sfx)
			plan := trampoline.Decide(before.State(sfx))
			for i := 0; i <= len(plan.Ops); i++ {
				b := newBackend(t)
				populate(t, b, before)
				must(t, trampoline.Execute(b, plan.Ops[:i]))
				bootLoop(t, b, before.Budget(sfx), fmt.Sprintf("crash after step %d of [%s]", i, plan.Transition))
			}
		})
	}
}

// testInit: store init's transition, crashed after every step, from an empty
// slot directory and from one with leftovers of an init that was cut off;
// and its refusal on every store that has a committed root. Before the last
// step there is no committed root: that is allowed only because store init
// writes the marker after Init returns, so such a directory is not a store.
func testInit(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	for _, left := range []bool{false, true} {
		before := Labels{".stage-new": "new"}
		if left {
			before[".stage-old"], before["rm-old"] = ".stage-old", "rm-old"
		}
		ev := trampoline.Event{Kind: trampoline.EvInit, Stage: ".stage-new"}
		tr, err := trampoline.Next(before.State(sfx), ev)
		if err != nil {
			t.Fatalf("init on %v: %v", before, err)
		}
		for i := 0; i <= len(tr.Ops); i++ {
			b := newBackend(t)
			populate(t, b, before)
			must(t, trampoline.Execute(b, tr.Ops[:i]))
			want, _ := before.Run(tr.Ops[:i])
			if got := labels(t, b); !equal(got, want) {
				t.Fatalf("init, crash after %d ops: got %v, want %v", i, got, want)
			}
			if i < len(tr.Ops) {
				continue
			}
			boots := bootLoop(t, b, nil, fmt.Sprintf("after init [%s]", tr))
			if boots[0].label != "new" || boots[0].plan.Trial {
				t.Errorf("after init: first boot %q (trial %v), want new, committed", boots[0].label, boots[0].plan.Trial)
			}
		}
	}
	for _, s := range Setups() {
		l := s.Labels(sfx)
		l[".stage-new"] = "new"
		_, err := trampoline.Next(l.State(sfx), trampoline.Event{Kind: trampoline.EvInit, Stage: ".stage-new"})
		if !errors.Is(err, trampoline.ErrHasRoot) {
			t.Errorf("init on %s: got %v, want ErrHasRoot", s, err)
		}
	}
}

// testFallback: a trial that does not mount is failed and root boots; a root
// that does not mount gives way to root.prev; after that nothing is left.
func testFallback(t *testing.T, b Backend) {
	sfx := b.Suffix()
	populate(t, b, Setup{Root: true, Prev: true, Trying: -1, Staged: 1}.Labels(sfx))
	st, _, err := trampoline.LoadState(b)
	must(t, err)
	plan := trampoline.Decide(st)
	must(t, trampoline.Execute(b, plan.Ops))
	fb := trampoline.Fallback(plan.After, plan.Boot.Name, "mount: invalid argument")
	must(t, trampoline.Execute(b, fb.Ops))
	got := labels(t, b)
	if fb.Boot.Name != trampoline.EntryName(trampoline.RoleCommitted, 0, sfx) || got[trampoline.EntryName(trampoline.RoleFailed, 0, sfx)] != "root.try-1" {
		t.Errorf("fallback from a trial: boots %q, store %v; want root, with the trial failed", fb.Boot.Name, got)
	}
	fb2 := trampoline.Fallback(fb.After, fb.Boot.Name, "mount: I/O error")
	if fb2.Boot.Name != trampoline.EntryName(trampoline.RolePrevious, 0, sfx) || len(fb2.Ops) != 0 {
		t.Errorf("fallback from root: got %s, want root.prev with no change", fb2)
	}
	if fb3 := trampoline.Fallback(fb2.After, fb2.Boot.Name, "mount: I/O error"); fb3.Boot.Name != "" {
		t.Errorf("fallback from root.prev: got %s, want nothing", fb3)
	}
}

func populate(t *testing.T, b Backend, l Labels) {
	t.Helper()
	for n, label := range l {
		must(t, b.Make(n, label))
	}
	must(t, b.SyncDir())
}

// labels reads the whole backend, protocol entries and leftovers, as a model.
func labels(t *testing.T, b Backend) Labels {
	t.Helper()
	ents, err := b.List()
	must(t, err)
	out := Labels{}
	for _, e := range ents {
		if trampoline.ParseName(e.Name, b.Suffix()).Role == trampoline.RoleOther && !isTestName(e.Name) {
			continue
		}
		l, err := b.Label(e.Name)
		must(t, err)
		out[e.Name] = l
	}
	return out
}

func isTestName(n string) bool {
	return len(n) <= 2 || strings.HasPrefix(n, "zz") || strings.HasPrefix(n, "layer.")
}

func equal(a, b Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testBudgetCrashes: the boot budget's fallback, crashed after every step,
// on a real backend: one committed root at every point, one counter, and
// the failing root never comes back as committed with a spent budget.
func testBudgetCrashes(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	root, prev := trampoline.EntryName(trampoline.RoleCommitted, 0, sfx), trampoline.EntryName(trampoline.RolePrevious, 0, sfx)
	before := Labels{root: "bad", prev: "good", trampoline.BootCountName(3): "count"}
	plan := trampoline.DecideWithBudget(before.State(sfx), 3)
	if plan.Boot.Name != root || len(plan.Ops) != 2 {
		t.Fatalf("budget spent: plan %s, want the exchange and the count", plan)
	}
	for i := 0; i <= len(plan.Ops); i++ {
		b := newBackend(t)
		populate(t, b, before)
		must(t, trampoline.Execute(b, plan.Ops[:i]))
		got := labels(t, b)
		st, _, err := trampoline.LoadState(b)
		must(t, err)
		_, k, ok := st.BootCount()
		if got[root] == "" || !ok {
			t.Fatalf("crash after step %d of [%s]: store %v has no committed root or no count", i, plan.Transition, got)
		}
		if i > 0 && got[root] == "bad" && k >= 3 {
			t.Fatalf("crash after step %d: the failing root is committed with a spent budget (%d): %v", i, k, got)
		}
		next := trampoline.DecideWithBudget(st, 3)
		if want := map[bool]string{true: "good", false: "bad"}[i == len(plan.Ops)]; got[root] != want || next.Boot.Name != root {
			t.Errorf("crash after step %d: committed %q, next boot %s; want %q", i, got[root], next, want)
		}
	}
}
