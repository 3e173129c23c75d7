package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

type statusCmd struct {
	json   bool
	sha256 bool
	store  storeFlag
}

// fullStatus is what status --json prints: the overlay's fields at the top
// level, as before, and the store's under "store" when there is one.
type fullStatus struct {
	overlay.Status
	Store *storeStatus `json:"store,omitempty"`
}

func newStatusCmd(e *env) *cobra.Command {
	s := &statusCmd{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the overlay is active and what the next boot does",
		Long: `Show whether the overlay is active now, whether it is enabled for the next
boot (the disable file on the real root; in store modes, on the store), the
kind of writable layer, and its size and usage. A tmpfs layer over 80% full
gets a warning: when it fills, writes fail everywhere.

When the system booted from a store (or --store names one), it also shows the
store: the booted image with its size and date (and sha256 with --sha256: it
reads the whole image), every root in the store with the reason the
trampoline recorded for it, and in plain words what the next boot does;
then the keys this system trusts for the next image and, for each root, its
signed record: the key that signed it, made on this device (update,
persist), staged with --insecure, or changed since it was signed.`,
		Example: "  overlayupd status\n  overlayupd status --json | jq .rw_used_percent",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return s.run(cmd, e) },
	}
	cmd.Flags().BoolVar(&s.json, "json", false, "print the status as JSON (schema in the README)")
	cmd.Flags().BoolVar(&s.sha256, "sha256", false, "also compute the sha256 of the booted image (reads the whole image)")
	s.store.register(cmd)
	return cmd
}

func (s *statusCmd) run(cmd *cobra.Command, e *env) error {
	st, err := overlay.CurrentStatus()
	if err != nil {
		return errorf(cmd, "%w", err)
	}
	if top, err := boot.DefaultStore(); err == nil && top == trampoline.StoreMount && st.Base == overlay.RobaseDir {
		// Booted an image of a store: the next boot reads the store's
		// disable file and get-mode script, not the booted image's. (A
		// store booted in classic mode, as its own root, is the base.)
		st.NextBootFrom(top)
	}
	full := fullStatus{Status: st}
	if store, err := s.openStore(); err != nil {
		return errorf(cmd, "%w", err)
	} else if store != nil {
		if full.Store, err = loadStoreStatus(e, store, s.sha256); err != nil {
			return errorf(cmd, "%w", err)
		}
	}
	if s.json {
		return writeJSON(cmd.OutOrStdout(), full)
	}
	printStatus(cmd.OutOrStdout(), st)
	if full.Store != nil {
		printStoreStatus(cmd.OutOrStdout(), *full.Store)
	}
	return nil
}

// openStore opens the store to report: --store (which must be one), else
// the store the system booted from, if any (nil if none).
func (s *statusCmd) openStore() (*trampoline.Store, error) {
	if s.store.top == "" {
		if _, err := boot.DefaultStore(); err != nil {
			return nil, nil
		}
	}
	return s.store.open()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(w io.Writer, st overlay.Status) {
	active, next := "inactive", "enabled"
	if st.Active {
		active = "active (" + st.UnionFS + ")"
	}
	if !st.EnabledNextBoot {
		next = "disabled (by " + st.DisabledBy + ")"
	}
	ro := "read-write"
	if st.BaseReadOnly {
		ro = "read-only"
	}
	fmt.Fprintf(w, "overlay is %s\n", active)
	fmt.Fprintf(w, "overlay %s for next boot\n", next)
	fmt.Fprintf(w, "base root: %s (%s)\n", st.Base, ro)
	if st.RWLayer != "" {
		layer := st.RWLayer
		if st.RWLayerDir != "" {
			layer += " in " + st.RWLayerDir
		}
		fmt.Fprintf(w, "writable layer: %s, %s of %s used (%.0f%%)\n", layer,
			overlay.HumanBytes(st.RWUsed), overlay.HumanBytes(st.RWSize), st.RWUsedPct)
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}
