package trampoline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/record"
)

// TrialDeadlineFile holds the deadline that apply, update or persist gave
// the staged trial (--deadline): how long after its boot it has to commit
// before the trial watchdog lets the board reset. It is a parameter of the
// trial, not protocol state: the names stay the whole state. Every stage
// rewrites it (or removes it when no deadline was given), before its
// rename, so the trial's first boot finds the deadline it was staged with.
// A crash between the two leaves the previously staged trial, if any, with
// the newer deadline: a different bound, never a missing one and never an
// extra boot.
const TrialDeadlineFile = "trial.deadline"

// Trial is how a root is staged.
type Trial struct {
	Tries    int           // boots allowed without a commit, 1..MaxTries
	Deadline time.Duration // 0: the kernel command line's, or the default
}

// The trial deadline's record is {"deadline":"10m0s"}: a Go duration.

// StageTrial is Stage with a deadline for the trial: the record is written
// (or removed) first, and only when the protocol would accept the stage.
func (s *Store) StageTrial(tmpPath string, t Trial) (Transition, error) {
	if filepath.Clean(filepath.Dir(tmpPath)) != filepath.Clean(s.SlotDir) {
		return Transition{}, fmt.Errorf("%w: %s is not in store %s", ErrBadStage, tmpPath, s.SlotDir)
	}
	ev := Event{Kind: EvStage, Stage: filepath.Base(tmpPath), Tries: t.Tries}
	st, err := s.State()
	if err != nil {
		return Transition{}, err
	}
	if _, err := Next(st, ev); err != nil {
		return Transition{}, fmt.Errorf("%s %s: %w", ev.Kind, s.SlotDir, err)
	}
	if err := s.setTrialDeadline(t.Deadline); err != nil {
		return Transition{}, err
	}
	return s.Do(ev)
}

func (s *Store) setTrialDeadline(d time.Duration) error {
	p := filepath.Join(s.SlotDir, TrialDeadlineFile)
	if d <= 0 {
		err := os.Remove(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("remove the old trial deadline: %w", err)
		}
		return atomicfile.SyncDir(s.SlotDir)
	}
	b := record.NewObject().String("deadline", d.String()).Bytes()
	if err := atomicfile.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("record the trial deadline: %w", err)
	}
	return nil
}

// TrialDeadline reads the staged trial's deadline: ok is false when none was
// given (or the record is unreadable, which err then says).
func (s *Store) TrialDeadline() (d time.Duration, ok bool, err error) {
	b, err := readSmall(filepath.Join(s.SlotDir, TrialDeadlineFile), 4096)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, _, err := record.String(b, "deadline")
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", TrialDeadlineFile, err)
	}
	d, err = time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%s: bad deadline %q", TrialDeadlineFile, v)
	}
	return d, true, nil
}
