package trampoline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// Store is a slot directory with its backend: it runs the pure decisions of
// this package against the disk and records their reasons.
type Store struct {
	Dir     string
	Backend Backend
	Now     func() time.Time                 // for reason timestamps; time.Now if nil
	Logf    func(format string, args ...any) // diagnostics that are not errors; may be nil
	// BeforeChange, if set, runs before a transition that changes the store
	// (the boot path makes the store writable there, and only there).
	BeforeChange func()
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

// Run executes a transition's ops, then records its notes. A note that cannot
// be written is logged, not returned: notes are diagnostics, never state.
func (s *Store) Run(t Transition) error {
	if (len(t.Ops) > 0 || len(t.Notes) > 0) && s.BeforeChange != nil {
		s.BeforeChange()
	}
	for i, op := range t.Ops {
		s.step(i)
		if err := Do(s.Backend, op); err != nil {
			return fmt.Errorf("store %s: step %d of %d: %w", s.Dir, i+1, len(t.Ops), err)
		}
	}
	s.step(len(t.Ops))
	for _, n := range t.Notes {
		if err := s.writeNote(n); err != nil {
			s.logf("store %s: record %s: %v", s.Dir, n.File, err)
		}
	}
	return nil
}

func (s *Store) step(i int) {
	if s.Step != nil {
		s.Step(i)
	}
}

func (s *Store) writeNote(n Note) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b, err := json.Marshal(Reason{Time: now().UTC(), Entry: n.Entry, Why: n.Why})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, n.File), append(b, '\n'), 0o644)
}

func (s *Store) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// State lists the store.
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
	plan := Decide(st)
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
	next := Fallback(plan.After, plan.Boot.Name, why)
	if err := s.Run(next.Transition); err != nil {
		return ReadOnlyPlan(next.After, err.Error()), err
	}
	return next, nil
}

// ReadOnlyPlan boots a committed root without changing the store: root.next
// (its commit point has passed), else root, else root.prev.
func ReadOnlyPlan(st State, why string) BootPlan {
	for _, r := range []Role{RoleNext, RoleCommitted, RolePrev} {
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
		return t, fmt.Errorf("%s %s: %w", ev.Kind, s.Dir, err)
	}
	return t, s.Run(t)
}

// Stage moves the fsynced image at tmpPath (a .stage-* file in the store, as
// squash.Stage makes it) into root.try-N. Hold the store lock from before
// squash.Stage until this returns, or gc could remove the temp file.
func (s *Store) Stage(tmpPath string, tries int) (Transition, error) {
	if filepath.Clean(filepath.Dir(tmpPath)) != filepath.Clean(s.Dir) {
		return Transition{}, fmt.Errorf("%w: %s is not in store %s", ErrBadStage, tmpPath, s.Dir)
	}
	return s.Do(Event{Kind: EvStage, Stage: filepath.Base(tmpPath), Tries: tries})
}

// Commit keeps the trial the system booted from (booted: its entry name).
func (s *Store) Commit(booted string, force bool) (Transition, error) {
	return s.Do(Event{Kind: EvCommit, Booted: booted, Force: force})
}

// Rollback cancels the trial, or schedules root.prev for the next boot.
func (s *Store) Rollback() (Transition, error) { return s.Do(Event{Kind: EvRollback}) }

// Fail ends the trial now as failed, recording why.
func (s *Store) Fail(why string) (Transition, error) { return s.Do(Event{Kind: EvFail, Why: why}) }

// GC removes root.failed (and its reason) and leftovers of interrupted work.
func (s *Store) GC() (Transition, error) {
	t, err := s.Do(Event{Kind: EvGC})
	if err != nil {
		return t, err
	}
	if err := os.Remove(filepath.Join(s.Dir, FailedReasonFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logf("store %s: %v", s.Dir, err)
	}
	return t, nil
}

// Reasons reads the reason files, by file name; missing or unreadable ones
// are left out.
func (s *Store) Reasons() map[string]Reason {
	out := map[string]Reason{}
	for _, f := range []string{FailedReasonFile, BootReasonFile} {
		b, err := os.ReadFile(filepath.Join(s.Dir, f))
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
	return NewStatus(s.Dir, st, ents, s.Reasons(), booted), nil
}
