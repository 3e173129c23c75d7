package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// bootedEntry names the store entry the running system booted; a variable so
// that tests can play a trial boot (the real one reads the mount table).
var bootedEntry = trampoline.Booted

// storeFlag is the --store flag every store command takes.
type storeFlag struct{ top string }

func (s *storeFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.top, "store", "", "top directory of the store, the one holding "+trampoline.MarkerFile+" and "+trampoline.SlotDir+"/ (default: the store this system booted from, "+trampoline.StoreMount+")")
}

// resolve returns the store's top directory, absolute, and refuses a
// directory that is not a store.
func (s *storeFlag) resolve() (string, error) {
	top := s.top
	if top == "" {
		var err error
		if top, err = trampoline.DefaultStore(); err != nil {
			return "", err
		}
	}
	abs, err := filepath.Abs(top)
	if err != nil {
		return "", err
	}
	if !trampoline.IsStore(abs) {
		return "", fmt.Errorf("%s is not a store (no %s in it): name the store's top directory, or make one with 'overlayupd store init'", abs, trampoline.MarkerFile)
	}
	return abs, nil
}

// withStore runs fn on the store at top with the store lock held and its
// filesystem writable, then puts back a read-only mount. The lock is taken
// first, on the read-only store (see trampoline.LockStore): a command that
// loses the race never remounts the store under the one that won.
func withStore(top string, fn func(*trampoline.Store) error) (err error) {
	st := trampoline.Open(top)
	l, err := trampoline.LockStore(st.Dir, os.Args)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	st.Step = crashPoint()
	return writable(top, func() error {
		l.Record()
		defer l.Unrecord()
		return fn(st)
	})
}

// writable runs fn with the filesystem holding dir writable: a read-only
// mount (the store at /overlay/store is one) is remounted read-write for fn
// and read-only after; a writable one, or a plain directory of a writable
// filesystem (tests), just runs fn.
func writable(dir string, fn func() error) error {
	ms, err := mounts.Read()
	if err != nil {
		return fn() // no mount table (odd container): try; errors say EROFS if it matters
	}
	m, ok := mountOf(ms, dir)
	if !ok || !m.ReadOnly() && !mounts.HasOption(m.SuperOpts, "ro") {
		return fn()
	}
	return overlay.WithWritable(m.MountPoint, fn)
}

// mountOf returns the mount that holds path, symlinks resolved.
func mountOf(ms []mounts.Mount, path string) (mounts.Mount, bool) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	return mounts.Of(ms, filepath.Clean(path))
}

// CrashEnv names the crash tests' hook: OVERLAYUPD_CRASH_AFTER_OP=N reboots
// the machine at once, without sync, when a command has made N of its
// renames durable (0: before the first). It is how the VM tests cut the
// power at a named point of apply, commit or rollback.
const CrashEnv = "OVERLAYUPD_CRASH_AFTER_OP"

// crashNow reboots without sync; a variable so tests can stop there instead.
var crashNow = func() {
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("b"), 0); err != nil {
		fmt.Fprintf(os.Stderr, "overlayupd: %s: cannot reboot: %v\n", CrashEnv, err)
		os.Exit(3)
	}
	for { // the reboot takes the machine; nothing after this point runs
		time.Sleep(time.Hour)
	}
}

func crashPoint() func(int) {
	v, ok := os.LookupEnv(CrashEnv)
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return nil
	}
	return func(i int) {
		if i == n {
			fmt.Fprintf(os.Stderr, "overlayupd: %s=%d: rebooting without sync now\n", CrashEnv, n)
			crashNow()
		}
	}
}
