package trampoline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/record"
)

// Store is a store's slot directory with its backend: it runs the pure
// decisions of this package against the disk and records their reasons.
type Store struct {
	Top     string // the store's top directory (the partition's); "" in tests of the slot directory alone
	SlotDir string // the slot directory, Top/roots
	Format  Format // what the entries are; nil in tests of the protocol alone
	Backend Backend
	Now     func() time.Time                 // for reason timestamps; time.Now if nil
	Logf    func(format string, args ...any) // diagnostics that are not errors; may be nil
	// BeforeChange, if set, runs before a transition that changes the store
	// (the boot path makes the store writable there, and only there). Its
	// error stops the transition before any op: ErrStoreReadOnly.
	BeforeChange func() error
	// BootBudget is the committed root's boot budget for Boot (budget.go);
	// 0 turns it off.
	BootBudget int
	// LastBoot, if set, tells Boot how the last boot ended (the watchdog's
	// boot status). It is called only when a trial is in progress, so a
	// plain boot of the committed root pays nothing for it.
	LastBoot func() LastBoot
	// Step, if set, runs before each op of a transition with its index, and
	// once more after the last with len(ops): the crash tests reboot the
	// machine there, at a named point.
	Step func(i int)
}

// Reason is a recorded diagnostic (a reason file's contents).
type Reason struct {
	Time  time.Time `json:"time"`
	Entry string    `json:"entry"`
	Why   string    `json:"why"`
}

// record is r as encoding/json writes it (package record: the PID-1 path
// writes reasons without encoding/json).
func (r Reason) record() []byte {
	return record.NewObject().Time("time", r.Time).String("entry", r.Entry).String("why", r.Why).Bytes()
}

// Run executes a transition's ops, then records its notes. A note that cannot
// be written is logged, not returned: notes are diagnostics, never state.
func (s *Store) Run(t Transition) error {
	if (len(t.Ops) > 0 || len(t.Notes) > 0) && s.BeforeChange != nil {
		if err := s.BeforeChange(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrStoreReadOnly, s.SlotDir, err)
		}
	}
	if err := execute(s.Backend, t.Ops, s.Step); err != nil {
		return fmt.Errorf("store %s: %w", s.SlotDir, err)
	}
	for _, n := range t.Notes {
		if err := s.writeNote(n); err != nil {
			s.logf("store %s: record %s: %v", s.SlotDir, n.File, err)
		}
	}
	return nil
}

// ErrStoreReadOnly is returned by Run when the store cannot be made writable.
var ErrStoreReadOnly = errors.New("store cannot change")

func (s *Store) writeNote(n Note) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b := Reason{Time: now().UTC(), Entry: n.Entry, Why: n.Why}.record()
	return atomicfile.WriteFile(filepath.Join(s.SlotDir, n.File), append(b, '\n'), 0o644)
}

func (s *Store) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// State lists the slot directory and reads its protocol state; it changes
// nothing (an interrupted commit is settled by Boot and Do, not here).
func (s *Store) State() (State, error) {
	st, _, err := LoadState(s.Backend)
	return st, err
}

// Boot decides and makes the decision durable; the caller mounts plan.Boot
// only after it returns. If the store cannot be changed (read-only, I/O
// error), it returns the error with a plan that changes nothing and boots a
// committed root (ReadOnlyPlan): an unconsumed try must never boot.
func (s *Store) Boot() (BootPlan, error) {
	st, err := s.State()
	if err != nil {
		return BootPlan{Why: err.Error()}, err
	}
	var last LastBoot
	if _, trial := st.Find(RoleTrying); trial && s.LastBoot != nil {
		last = s.LastBoot()
	}
	plan := DecideBoot(st, s.BootBudget, last)
	if err := s.Run(plan.Transition); err != nil {
		if now, lerr := s.State(); lerr == nil {
			st = now
		}
		return ReadOnlyPlan(st, err.Error()), err
	}
	return plan, nil
}

// Fallback records that plan.Boot did not boot and returns, durably, what to
// boot instead (see the pure Fallback).
func (s *Store) Fallback(plan BootPlan, why string) (BootPlan, error) {
	// The state from the disk: the boot made names since the plan (a
	// trial's layer.trial), which the failure must take along.
	st := plan.After
	if now, err := s.State(); err == nil {
		st = now
	}
	next := Fallback(st, plan.Boot.Name, why)
	if err := s.Run(next.Transition); err != nil {
		return readOnlyFallback(st, plan.Boot.Name, next, err.Error()), err
	}
	return next, nil
}

// readOnlyFallback is the fallback when its changes cannot be made (a card
// that went read-only, an I/O error): the entry the pure Fallback chose,
// booted under the name it has now; a committed root other than failed
// when the fallback would have renamed its way to one; nothing when the
// fallback has nothing left. Why not ReadOnlyPlan alone: it takes the
// committed root first, which is what just failed when the committed root
// did not boot, so every fallback booted it again and root.prev never.
func readOnlyFallback(st State, failed string, next BootPlan, why string) BootPlan {
	switch {
	case next.Boot.Name == "":
		return BootPlan{Why: "store not writable (" + why + "): " + next.Why, After: st}
	case st.Has(next.Boot.Name):
		e := ParseName(next.Boot.Name, st.Suffix)
		return BootPlan{Source: e, Boot: e, Why: "store not writable (" + why + "): " + next.Why + ": " + e.Name + " without changes", After: st}
	}
	if p := ReadOnlyPlan(st, why); p.Boot.Name != failed {
		return p
	}
	return BootPlan{Why: "store not writable (" + why + ") and no committed root but " + failed + ", which did not boot", After: st}
}

// ReadOnlyPlan boots a committed root without changing the store: root.next
// (its commit point has passed), else root, else root.prev.
func ReadOnlyPlan(st State, why string) BootPlan {
	for _, r := range []Role{RoleCommitting, RoleCommitted, RolePrevious} {
		if e, ok := st.Find(r); ok {
			return BootPlan{Source: e, Boot: e, Why: "store not writable (" + why + "): " + e.Name + " without changes", After: st}
		}
	}
	return BootPlan{Why: "store not writable (" + why + ") and no committed root", After: st}
}

// Do computes the transition for ev on the current store and runs it.
func (s *Store) Do(ev Event) (Transition, error) {
	st, err := s.State()
	if err != nil {
		return Transition{}, err
	}
	t, err := Next(st, ev)
	if err != nil {
		return t, fmt.Errorf("%s %s: %w", ev.Kind, s.SlotDir, err)
	}
	if err := s.checkInUse(t); err != nil {
		return t, fmt.Errorf("%s %s: %w", ev.Kind, s.SlotDir, err)
	}
	return t, s.Run(t)
}

// ErrInUse is returned by Do for a transition that would delete an entry the
// running system uses; nothing was changed.
var ErrInUse = errors.New("entry in use")

func (s *Store) checkInUse(t Transition) error {
	g, ok := s.Backend.(InUse)
	if !ok {
		return nil
	}
	for _, name := range t.Deletes() {
		where, err := g.InUse(name)
		if err != nil {
			return err
		}
		if where != "" {
			return fmt.Errorf("%w: %s is mounted at %s (this system runs it): not deleted; boot another root first", ErrInUse, name, where)
		}
	}
	return nil
}

// Stage moves the fsynced, sealed entry at tmpPath (a .stage-* entry in the
// slot directory, made by the caller) into root.try-N, with no deadline of
// its own (see StageTrial). Hold the store lock from before the entry is
// made until this returns, or gc could remove it.
func (s *Store) Stage(tmpPath string, tries int) (Transition, error) {
	return s.StageTrial(tmpPath, Trial{Tries: tries})
}

// Init makes the fsynced entry at tmpPath (a .stage-* entry in the slot
// directory) the first committed root of a new store.
func (s *Store) Init(tmpPath string) (Transition, error) {
	if filepath.Clean(filepath.Dir(tmpPath)) != filepath.Clean(s.SlotDir) {
		return Transition{}, fmt.Errorf("%w: %s is not in store %s", ErrBadStage, tmpPath, s.SlotDir)
	}
	return s.Do(Event{Kind: EvInit, Stage: filepath.Base(tmpPath)})
}

// Keep makes the entry at tmpPath (a .stage-* entry in the slot directory)
// root.failed, recording why: a root that failed before it was staged,
// kept for inspection.
func (s *Store) Keep(tmpPath, why string) (Transition, error) {
	if filepath.Clean(filepath.Dir(tmpPath)) != filepath.Clean(s.SlotDir) {
		return Transition{}, fmt.Errorf("%w: %s is not in store %s", ErrBadStage, tmpPath, s.SlotDir)
	}
	return s.Do(Event{Kind: EvKeep, Stage: filepath.Base(tmpPath), Why: why})
}

// Commit keeps the trial the system booted from (booted: its entry name).
func (s *Store) Commit(booted string, force bool) (Transition, error) {
	return s.Do(Event{Kind: EvCommit, Booted: booted, Force: force})
}

// Rollback cancels the trial, or schedules root.prev for the next boot.
func (s *Store) Rollback() (Transition, error) { return s.Do(Event{Kind: EvRollback}) }

// EnsureBootCount gives a store without a boot counter (made before the
// budget existed) its boots-0: an empty file, fsynced, renamed into place,
// and the directory fsynced. BeforeChange runs first.
func (s *Store) EnsureBootCount() error {
	if s.BeforeChange != nil {
		if err := s.BeforeChange(); err != nil {
			return fmt.Errorf("%w: %w", ErrStoreReadOnly, err)
		}
	}
	return atomicfile.WriteFile(filepath.Join(s.SlotDir, BootCountName(0)), nil, 0o644)
}

// MarkGood records that the committed root booted well: its boot budget
// starts again (budget.go). A store without a count, or at 0, is unchanged.
func (s *Store) MarkGood() (Transition, error) { return s.Do(Event{Kind: EvMarkGood}) }

// Fail ends the trial now as failed, recording why.
func (s *Store) Fail(why string) (Transition, error) { return s.Do(Event{Kind: EvFail, Why: why}) }

// GC removes root.failed (and its reason), layer.failed and leftovers of
// interrupted work.
func (s *Store) GC() (Transition, error) { return s.GCBooted("") }

// GCBooted is GC run on a system that booted the entry booted: layer.failed
// is kept when that system may be the failed trial, which writes there.
func (s *Store) GCBooted(booted string) (Transition, error) {
	t, err := s.Do(Event{Kind: EvGC, Booted: booted})
	if err != nil {
		return t, err
	}
	if err := os.Remove(filepath.Join(s.SlotDir, FailedReasonFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logf("store %s: %v", s.SlotDir, err)
	}
	return t, nil
}

// Reasons reads the reason files, by file name; missing or unreadable ones
// are left out.
func (s *Store) Reasons() map[string]Reason {
	out := map[string]Reason{}
	for _, f := range []string{FailedReasonFile, BootReasonFile} {
		b, err := readSmall(filepath.Join(s.SlotDir, f), 64<<10)
		if err != nil {
			continue
		}
		var r Reason
		if json.Unmarshal(b, &r) == nil {
			out[f] = r
		}
	}
	return out
}

// Status describes the store; booted is the entry the running system booted
// from ("" if unknown).
func (s *Store) Status(booted string) (Status, error) {
	st, ents, err := LoadState(s.Backend)
	if err != nil {
		return Status{}, err
	}
	status := NewStatus(s.SlotDir, st, ents, s.Reasons(), booted)
	status.Layer = s.Layer(st)
	if f, ok := s.Format.(EntrySizer); ok {
		for i, e := range status.Entries {
			if n, err := f.EntrySize(s.SlotDir, e.Name); e.Kind == "image" && err == nil {
				status.Entries[i].Size = n
			}
		}
	}
	return status, nil
}
