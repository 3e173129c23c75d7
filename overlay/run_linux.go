package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/loop"
)

// Run carries out a plan in order. When a step fails it undoes the mounts,
// moves and remounts made so far, newest first, so that the caller can go on
// booting the plain root as it was, and returns the failing step's error.
func Run(ops []Op, logf func(string, ...any)) (err error) {
	var done []Op
	defer func() {
		// A panic undoes too, before it goes on up: PID 1's recover then
		// boots the plain root as it was.
		r := recover()
		if err == nil && r == nil {
			return
		}
		for i := len(done) - 1; i >= 0; i-- {
			if uerr := undo(done[i]); uerr != nil {
				logf("undo %q: %v", done[i], uerr)
			}
		}
		if r != nil {
			panic(r)
		}
	}()
	for _, o := range ops {
		if err := o.run(logf); err != nil {
			return &StepError{Op: o, Err: err}
		}
		done = append(done, o)
	}
	return nil
}

// StepError is the error of the plan step that failed. errors.Is matches it
// against its phase's error: ErrLowerMount (the root to boot does not mount:
// try another), ErrLayer or ErrUnion (no overlay can be laid over it).
type StepError struct {
	Op  Op
	Err error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Is reports whether target is the error of the step's phase.
func (e *StepError) Is(target error) bool {
	switch e.Op.Phase {
	case PhaseLower:
		return target == ErrLowerMount
	case PhaseLayer:
		return target == ErrLayer
	case PhaseUnion:
		return target == ErrUnion
	}
	return false
}

func (o Op) run(logf func(string, ...any)) error {
	switch o.Kind {
	case OpMkdir:
		return os.MkdirAll(o.Target, 0o755)
	case OpMount:
		if o.Verity != "" {
			return mountVerity(o, logf)
		}
		if o.Loop {
			_, err := loop.Mount(o.Source, o.Target, o.FSType, o.Flags, o.Data)
			return err
		}
		if err := unix.Mount(o.Source, o.Target, o.FSType, o.Flags, o.Data); err != nil {
			return err
		}
		if o.Flags&(unix.MS_BIND|unix.MS_RDONLY) == unix.MS_BIND|unix.MS_RDONLY {
			// The kernel ignores MS_RDONLY on a new bind: a remount of the
			// bind makes it read-only, as mount(8) does for "-o bind,ro".
			if err := unix.Mount("", o.Target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
				_ = unix.Unmount(o.Target, unix.MNT_DETACH)
				return fmt.Errorf("remount the bind read-only: %w", err)
			}
		}
		return nil
	case OpMove:
		return unix.Mount(o.Source, o.Target, "", unix.MS_MOVE, "")
	case OpRemount:
		return unix.Mount("", o.Target, "", unix.MS_REMOUNT|o.Flags, "")
	case OpClearDir:
		return clearDir(o.Target)
	case OpMoveAside:
		return moveAside(o.Target, o.Source)
	case OpChmod:
		return os.Chmod(o.Target, 0o755)
	case OpPrivate:
		return unix.Mount("", o.Target, "", unix.MS_REC|unix.MS_PRIVATE, "")
	case OpPivot:
		return pivot(o.Target, o.Source)
	case OpTouch:
		f, err := os.OpenFile(o.Target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return fmt.Errorf("unknown step kind %d", o.Kind)
}

func undo(o Op) error {
	switch o.Kind {
	case OpMount: // a loop device is autoclear, a dm-verity device removed on last close: they go with the unmount
		return unix.Unmount(o.Target, unix.MNT_DETACH)
	case OpMove:
		return unix.Mount(o.Target, o.Source, "", unix.MS_MOVE, "")
	case OpRemount:
		if o.Flags&unix.MS_RDONLY == 0 {
			return unix.Mount("", o.Target, "", unix.MS_REMOUNT|unix.MS_RDONLY|(o.Flags&unix.MS_BIND), "")
		}
	}
	return nil
}

// clearDir removes everything inside dir, keeping dir itself.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// moveAside renames dir to bak, replacing an older bak. The older bak is first
// renamed out of the way and removed only after the new one is in place, so a
// power cut in between loses neither.
func moveAside(dir, bak string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old := bak + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(bak, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(dir, bak); err != nil {
		return err
	}
	// Why: the renames must be durable before the old backup is deleted.
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// pivot makes newRoot the root of this mount namespace, with the old root
// attached at putOld (relative to newRoot), and enters it.
func pivot(newRoot, putOld string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", newRoot, err)
	}
	if err := unix.PivotRoot(".", putOld); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if putOld == "." {
		// pivot_root(".", ".") stacks the old root on top of the new one;
		// detaching it leaves the new root alone, with no directory needed
		// for the old one (a read-only image may have none).
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the old root: %w", err)
		}
	}
	// After pivot_root our root directory still points at the old root on
	// some kernels; chroot(".") makes "/" the new root for the exec'd init.
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}
