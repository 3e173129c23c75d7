package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/internal/remount"
	"github.com/overlayupd/overlayupd/trampoline"
)

// storeFlag is the --store flag every store command takes.
type storeFlag struct{ top string }

func (s *storeFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.top, "store", "", "top directory of the store, the one holding "+trampoline.MarkerFile+" and "+trampoline.SlotDir+"/ (default: the store this system booted from, "+trampoline.StoreMount+")")
}

// open returns the store named by --store, or the one this system booted
// from, with the format its marker names; a directory that is not a store
// is refused with what to do.
func (s *storeFlag) open() (*trampoline.Store, error) {
	top := s.top
	if top == "" {
		var err error
		if top, err = boot.DefaultStore(); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(top)
	if err != nil {
		return nil, err
	}
	if !trampoline.IsStore(abs) {
		if fi, err := os.Lstat(filepath.Join(abs, trampoline.MarkerFile)); err == nil {
			return nil, fmt.Errorf("%s is not a store: its %s is a %s, not a regular file: a store's marker is a file 'overlayupd store init' writes", abs, trampoline.MarkerFile, fsmode.Kind(fi.Mode()))
		}
		return nil, fmt.Errorf("%s is not a store (no %s in it): name the store's top directory, or make one with 'overlayupd store init'", abs, trampoline.MarkerFile)
	}
	// The slot directory must be the store's own: a link there had gc
	// delete rm-* and .stage-* files wherever it pointed, and apply stage
	// images there.
	slots := filepath.Join(abs, trampoline.SlotDir)
	if fi, err := os.Lstat(slots); err == nil && !fi.IsDir() {
		what := "a " + fsmode.Kind(fi.Mode())
		if l, err := os.Readlink(slots); err == nil {
			what = "a symbolic link to " + l
		}
		return nil, fmt.Errorf("store %s: %s is %s, not a directory: the store's entries must be in the store itself; put the directory there", abs, slots, what)
	}
	return boot.OpenStore(abs)
}

// withStore runs fn on st with the store lock held and its filesystem
// writable, then puts back a read-only mount. The lock is taken first, on
// the read-only store (see trampoline.LockStore): a command that loses the
// race never remounts the store under the one that won.
func (e *env) withStore(st *trampoline.Store, fn func(*trampoline.Store) error) (err error) {
	l, err := trampoline.LockStore(st.SlotDir, e.args)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	st.Step = e.step
	return remount.With(st.Top, func() error {
		l.Record()
		defer l.Unrecord()
		// Links, FIFOs and the like under the protocol's names hold names
		// its renames need (a FIFO at root.prev jammed every commit after
		// its commit point): out of the way first, as the boot does.
		moved, err := st.MoveHostile()
		for _, m := range moved {
			fmt.Fprintf(os.Stderr, "overlayupd: moved %s aside to %s: not an image file or a subvolume\n", m[0], m[1])
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "overlayupd: warning: %v\n", err)
		}
		return fn(st)
	})
}

// storeCommand is the shape of gc, rollback and mark-good: open the store,
// run change under the lock, print its report (as JSON when *asJSON).
func (e *env) storeCommand(store *storeFlag, asJSON *bool, change func(*trampoline.Store) (report, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		st, err := store.open()
		if err != nil {
			return errorf(cmd, "%w", err)
		}
		var r report
		err = e.withStore(st, func(st *trampoline.Store) error {
			var err error
			r, err = change(st)
			return err
		})
		if err != nil {
			return errorf(cmd, "%w", err)
		}
		return r.print(cmd, *asJSON, e, st)
	}
}

// checkTries refuses a --tries outside the protocol's range.
func checkTries(cmd *cobra.Command, n int) error {
	if n < 1 || n > trampoline.MaxTries {
		return errorf(cmd, "--tries %d: give 1 to %d boots", n, trampoline.MaxTries)
	}
	return nil
}
