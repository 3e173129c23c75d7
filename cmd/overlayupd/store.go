package main

import (
	"fmt"
	"os"
	"path/filepath"

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
