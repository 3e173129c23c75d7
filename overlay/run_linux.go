package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"

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

// mkdirAll is os.MkdirAll that tries mkdir(2) first: the plan's directories
// are nearly always new and their parents there, so one system call does,
// where os.MkdirAll stats the path, then the parent, then creates it.
func mkdirAll(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST) && isDir(dir):
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

func (o Op) run(logf func(string, ...any)) error {
	switch o.Kind {
	case OpMkdir:
		if o.Exists {
			// Anything already there will do, a symbolic link included:
			// Debian's /var/lock is one to /run/lock, absolute, which from
			// here would resolve outside the new root.
			if _, err := os.Lstat(o.Target); err == nil {
				return nil
			}
		}
		return mkdirAll(o.Target)
	case OpCheckInit:
		return checkRootInit(o.Target)
	case OpShadow:
		return runShadow(o.Shadow, logf)
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

// checkRootInit reads what RealInit resolves to inside root and checks it
// with CheckInit, following a "#!" interpreter once (the kernel allows a
// script interpreter to be a script, rarely used, so once is enough to catch
// a missing /bin/sh).
func checkRootInit(root string) error { return CheckRootProgram(root, RealInit) }

// CheckRootProgram is checkRootInit for the program at p inside root: what
// the kernel would find if it ran p as init on that root (the admin
// command checks /sbin/init-overlay with it before it names it on the
// kernel command line).
func CheckRootProgram(root, p string) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	for range 2 {
		f := readInit(rfd, p)
		if errors.Is(f.Err, unix.ENOSYS) || errors.Is(f.Err, unix.EINVAL) {
			// A kernel before 5.6 has no openat2: no check rather than a
			// false alarm that would refuse every root.
			return nil
		}
		interp, err := CheckInit(f)
		if err != nil || interp == "" {
			return err
		}
		p = interp
	}
	return nil
}

// readInit opens p inside the root rfd as the kernel would after a chroot
// (openat2 RESOLVE_IN_ROOT: absolute symlinks stay inside), without blocking
// on a FIFO, and reads its first bytes.
func readInit(rfd int, p string) InitFile {
	f := InitFile{Path: p}
	fd, err := fsmode.Openat2(rfd, strings.TrimPrefix(p, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		f.Err = err
		return f
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Err = err
		return f
	}
	f.Mode, f.Size = fsmode.FromStat(st.Mode), st.Size
	if !f.Mode.IsRegular() || f.Size == 0 {
		return f
	}
	buf := make([]byte, maxShebang)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		f.Err = err
		return f
	}
	f.Head = buf[:n]
	return f
}
