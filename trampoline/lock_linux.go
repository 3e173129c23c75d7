package trampoline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the store's lock file; it holds the holder's pid and command line.
const LockFile = ".lock"

// ErrLocked matches a *LockedError with errors.Is.
var ErrLocked = errors.New("store is locked")

// LockedError says who holds the store lock.
type LockedError struct {
	Dir     string
	PID     int    // 0 if the holder had not written it yet
	Command string // the holder's command line
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("store %s is locked by another process; wait or check that process", e.Dir)
	}
	return fmt.Sprintf("store %s is locked by pid %d (%s); wait or check that process", e.Dir, e.PID, e.Command)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held store lock; Close releases it.
type Lock struct{ f *os.File }

// LockStore takes flock(LOCK_EX|LOCK_NB) on dir/.lock and writes the caller's
// pid and command line into it. The lock lives in the open file description,
// so it is released when the process dies, however it dies.
func LockStore(dir string, cmdline []string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, cmd := readHolder(f)
			return nil, &LockedError{Dir: dir, PID: pid, Command: cmd}
		}
		return nil, fmt.Errorf("lock store %s: flock: %w", dir, err)
	}
	// No fsync: the holder text only serves the message above.
	info := fmt.Sprintf("%d\n%s\n", os.Getpid(), strings.Join(cmdline, " "))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return &Lock{f: f}, nil
}

func readHolder(f *os.File) (int, string) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err != nil {
		return 0, ""
	}
	pidS, cmd, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(pidS))
	if err != nil {
		return 0, ""
	}
	return pid, strings.TrimSpace(cmd)
}

// Close clears the holder text and releases the lock.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}
