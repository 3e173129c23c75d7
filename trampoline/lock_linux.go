package trampoline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
type Lock struct {
	dir  *os.File // the flock lives on the slot directory's open file
	path string   // the holder file
	info string
	f    *os.File // the holder file, once written
}

// LockStore takes flock(LOCK_EX|LOCK_NB) on the slot directory dir itself
// and records the caller's pid and command line in dir/.lock.
//
// Why the directory and not the file: opening a directory needs no write
// access, so a command locks a read-only store before it remounts it, and the
// one that loses never touches the mount. The holder record is best effort
// (it cannot be written while the store is read-only): call Record again
// once it is writable. The lock lives in the open file description, so it
// is released when the process dies, however it dies.
func LockStore(dir string, cmdline []string) (*Lock, error) {
	// Why O_DIRECTORY: a slot directory that is a FIFO (untrusted or
	// damaged media) must fail here, not block the open for a writer.
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := flock(d); err != nil {
		d.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, cmd := readHolder(filepath.Join(dir, LockFile))
			return nil, &LockedError{Dir: dir, PID: pid, Command: cmd}
		}
		return nil, fmt.Errorf("lock store %s: flock: %w", dir, err)
	}
	l := &Lock{dir: d, path: filepath.Join(dir, LockFile), info: fmt.Sprintf("%d\n%s\n", os.Getpid(), strings.Join(cmdline, " "))}
	l.Record()
	return l, nil
}

// lockWait is how long LockStore retries a held lock. Why retry at all: a
// lock released by its holder stays held a moment longer by any child that
// the holder forked and that has not exec'd yet (the open file description
// is shared until exec closes it), so a command right after another one
// could find the store locked by no one.
const lockWait = 300 * time.Millisecond

func flock(d *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Record writes the holder into the lock file, if it has not yet and the
// store is writable. No fsync: the record only serves LockedError.
func (l *Lock) Record() {
	if l.f != nil {
		return
	}
	// Why O_NOFOLLOW and the type check: a .lock planted as a link on
	// untrusted media must not make us truncate a file outside the store.
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(l.info), 0)
	}
	l.f = f
}

// readHolder reads the lock file, never following a link or blocking on a
// FIFO that untrusted media may put there.
func readHolder(path string) (int, string) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return 0, ""
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
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

// Unrecord clears the holder record and closes the lock file, keeping the
// lock: a filesystem with a file open for writing cannot be remounted
// read-only, so call it before the store goes back to read-only.
func (l *Lock) Unrecord() {
	if l.f != nil {
		_ = l.f.Truncate(0)
		l.f.Close()
		l.f = nil
	}
}

// Close clears the holder record and releases the lock.
func (l *Lock) Close() error {
	if l == nil || l.dir == nil {
		return nil
	}
	l.Unrecord()
	err := l.dir.Close()
	l.dir = nil
	return err
}
