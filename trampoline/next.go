package trampoline

import (
	"errors"
	"fmt"
)

// EventKind is a command that changes the store.
type EventKind int

// The events. Boot-time transitions are Decide and Fallback.
const (
	EvStage    EventKind = iota // apply/update: stage a new image
	EvCommit                    // keep the trial
	EvRollback                  // cancel the trial, or go back to root.prev
	EvFail                      // end the trial now, as failed
	EvGC                        // remove root.failed and leftovers
	EvInit                      // store init: the first committed root
	EvKeep                      // keep a new root that failed before staging (update --keep-failed) as root.failed
	EvMarkGood                  // the committed root booted well: its boot budget starts again (budget.go)
)

var eventNames = [...]string{"stage", "commit", "rollback", "fail", "gc", "init", "keep", "mark-good"}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return fmt.Sprintf("event(%d)", int(k))
	}
	return eventNames[k]
}

// Event is a command with its arguments.
type Event struct {
	Kind   EventKind
	Stage  string // EvStage, EvInit, EvKeep: the .stage-* entry that holds the new root
	Tries  int    // EvStage: boots allowed without a commit, 1..MaxTries
	Booted string // EvCommit, EvGC: the entry the running system booted from
	Force  bool   // EvCommit: commit even when not booted into the trial
	Why    string // EvFail, EvRollback, EvKeep: recorded in failed.reason
}

// Errors of Next, for errors.Is.
var (
	ErrNotInTrial      = errors.New("not booted into the trial")
	ErrNothingToDo     = errors.New("nothing to do")
	ErrBadStage        = errors.New("bad stage entry")
	ErrBadTries        = errors.New("tries out of range")
	ErrNoCommittedRoot = errors.New("no committed root")
	ErrHasRoot         = errors.New("store already has a committed root")
	ErrFoldPending     = errors.New("a committed trial's layer is not folded yet")
)

// Next is the transition a command makes. Every event first finishes an
// interrupted commit (root.next), so each command starts from a settled state.
func Next(st State, ev Event) (Transition, error) {
	b := newBuilder(st)
	finished := b.finishCommit()
	b.settleLayers()
	var err error
	switch ev.Kind {
	case EvStage:
		err = b.stage(ev)
	case EvCommit:
		err = b.commit(ev, finished)
	case EvRollback:
		err = b.rollback(ev)
	case EvFail:
		err = b.failTrial(ev)
	case EvGC:
		b.gc(ev)
	case EvInit:
		err = b.init(ev)
	case EvKeep:
		err = b.keep(ev)
	case EvMarkGood:
		b.resetBootCount()
	default:
		err = fmt.Errorf("unknown event %s", ev.Kind)
	}
	if err != nil {
		return Transition{}, err
	}
	return b.transition()
}

// stage puts the new image into root.try-N. With no staged entry that is one
// RENAME_NOREPLACE. A staged root.try-M is replaced, the newer apply wins: one
// RENAME_EXCHANGE swaps the images (a crash leaves exactly one staged image,
// never none and never two), and the old image, now under the .stage-* name,
// is deleted last. When M != N one more rename changes the count, and the
// order keeps every crash point at the smaller count, so no image ever gets
// more boots than asked for (invariant 2): going down (M > N) the old image is
// renamed to N before the exchange; going up (M < N) the new image is renamed
// to N after it. A trial in progress is left alone; the next boot supersedes it.
func (b *builder) stage(ev Event) error {
	if err := b.checkStaging(ev.Stage); err != nil {
		return err
	}
	if ev.Tries < 1 || ev.Tries > MaxTries {
		return fmt.Errorf("%w: %d, want 1 to %d", ErrBadTries, ev.Tries, MaxTries)
	}
	if !b.st.HasCommitted() {
		return fmt.Errorf("%w: stage needs a committed root to fall back to", ErrNoCommittedRoot)
	}
	to := b.name(RoleStaged, ev.Tries)
	old, ok := b.st.Find(RoleStaged)
	if !ok {
		b.rename(ev.Stage, to)
		return nil
	}
	if old.Tries > ev.Tries {
		b.rename(old.Name, to)
		b.exchange(ev.Stage, to)
	} else {
		b.exchange(ev.Stage, old.Name)
		if old.Name != to {
			b.rename(old.Name, to)
		}
	}
	b.removes = append(b.removes, ev.Stage)
	return nil
}

func (b *builder) checkStaging(name string) error {
	if e := ParseName(name, b.st.Suffix); e.Role != RoleStaging || !b.st.Has(name) {
		return fmt.Errorf("%w: %q is not a %s* entry of the store", ErrBadStage, name, StagePrefix)
	}
	return nil
}

// init makes the new root the committed root of a store that has none: one
// RENAME_NOREPLACE. A crash before it leaves a .stage-* leftover and no
// committed root; store init writes the marker only after this returns, so
// such a store is never booted as one, and init can run again.
func (b *builder) init(ev Event) error {
	if err := b.checkStaging(ev.Stage); err != nil {
		return err
	}
	if b.st.HasCommitted() {
		return fmt.Errorf("%w: init makes the first one; use apply to stage a new root", ErrHasRoot)
	}
	b.rename(ev.Stage, b.name(RoleCommitted, 0))
	return nil
}

// keep makes a .stage-* entry root.failed, for diagnosis: the old
// root.failed goes first (rename to rm-*), then one rename. It never boots:
// root.failed is no trial and no committed root.
func (b *builder) keep(ev Event) error {
	if err := b.checkStaging(ev.Stage); err != nil {
		return err
	}
	failed := b.name(RoleFailed, 0)
	if b.st.Has(failed) {
		b.discard(failed)
	}
	b.rename(ev.Stage, failed)
	b.notes = append(b.notes, Note{File: FailedReasonFile, Entry: failed, Why: orDefault(ev.Why, "kept for inspection")})
	return nil
}

// commit makes the trial the committed root: rename it to root.next (the
// commit point, see finishCommit), then finishCommit. Only the booted trial
// commits unless Force; Force also commits a staged image never booted.
func (b *builder) commit(ev Event, finished bool) error {
	t, ok := b.st.Find(RoleTrying)
	switch {
	case !ok && finished:
		return nil // the interrupted commit was the commit asked for
	case !ok:
		s, staged := b.st.Find(RoleStaged)
		if !staged {
			return fmt.Errorf("%w: no trial in progress, nothing to commit", ErrNothingToDo)
		}
		if !ev.Force {
			return fmt.Errorf("%w: %s is staged but not booted yet; reboot to try it, or commit --force", ErrNotInTrial, s.Name)
		}
		t = s
	case !ev.Force && ev.Booted != t.Name:
		booted := ev.Booted
		if booted == "" {
			booted = "an unknown entry"
		}
		return fmt.Errorf("%w: booted %s, the trial is %s; reboot into it, or commit --force", ErrNotInTrial, booted, t.Name)
	}
	if b.st.Has(LayerTrial) && b.st.Has(LayerFold) {
		// Only by hand: a boot with a fold pending makes no trial layer.
		return fmt.Errorf("%w: %s waits for a boot to fold it into the persistent layer; reboot first", ErrFoldPending, LayerFold)
	}
	b.rename(t.Name, b.name(RoleCommitting, 0))
	b.finishCommit()
	return nil
}

// rollback cancels a trial (trying and/or staged) so the committed root boots
// next; without one it swaps root and root.prev with one RENAME_EXCHANGE, so
// there is always a root. Order when cancelling: the trying entry is failed
// before the staged one is discarded, so that every crash point boots what the
// state before (staged supersedes trying) or after (root) would boot.
func (b *builder) rollback(ev Event) error {
	t, tOK := b.st.Find(RoleTrying)
	s, sOK := b.st.Find(RoleStaged)
	root, prev := b.name(RoleCommitted, 0), b.name(RolePrevious, 0)
	switch {
	case tOK || sOK:
		if tOK {
			b.fail(t, orDefault(ev.Why, "trial rolled back by the user"))
		}
		if sOK {
			b.discard(s.Name)
		}
	case b.st.Has(root) && b.st.Has(prev):
		b.exchange(root, prev)
		b.resetBootCount() // a new committed root: its own budget
	case b.st.Has(prev):
		b.rename(prev, root)
		b.resetBootCount()
	default:
		return fmt.Errorf("%w: no trial and no previous root to roll back to", ErrNothingToDo)
	}
	return nil
}

func (b *builder) failTrial(ev Event) error {
	t, ok := b.st.Find(RoleTrying)
	if !ok {
		return fmt.Errorf("%w: no trial in progress", ErrNothingToDo)
	}
	b.fail(t, orDefault(ev.Why, "trial marked failed"))
	return nil
}

// gc discards root.failed and layer.failed and deletes rm-* and .stage-*
// leftovers. The caller holds the store lock, so no apply is writing a
// .stage-* file meanwhile. layer.failed is kept while the running system
// may be the failed trial (a trial rolled back and not rebooted yet: it
// booted what is now root.failed, or was, once gc removed that): it is
// that system's writable layer. A system booted from a committed root or
// a trial never writes there.
func (b *builder) gc(ev Event) {
	for _, e := range b.st.Entries() {
		if e.Role == RoleRemoving || e.Role == RoleStaging {
			b.removes = append(b.removes, e.Name)
		}
	}
	if f, ok := b.st.Find(RoleFailed); ok {
		b.discard(f.Name)
	}
	if b.st.Has(LayerFailed) && !failedLayerInUse(ev.Booted, b.st.Suffix) {
		b.discard(LayerFailed)
	}
}

func failedLayerInUse(booted, suffix string) bool {
	if booted == "" {
		return false
	}
	switch ParseName(booted, suffix).Role {
	case RoleCommitted, RoleCommitting, RoleTrying, RolePrevious, RoleStaged:
		return false
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
