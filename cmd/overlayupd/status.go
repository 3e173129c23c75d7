package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/overlayupd/overlayupd/overlay"
)

type statusCmd struct{ json bool }

func newStatusCmd() *cobra.Command {
	s := &statusCmd{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the overlay is active and what the next boot does",
		Long: `Show whether the overlay is active now, whether it is enabled for the next
boot (the disable file on the real root), the kind of writable layer, and its
size and usage. A tmpfs layer over 80% full gets a warning: when it fills,
writes fail everywhere.`,
		Example: "  overlayupd status\n  overlayupd status --json | jq .rw_used_percent",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := overlay.CurrentStatus()
			if err != nil {
				return errorf(cmd, "%v", err)
			}
			if s.json {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&s.json, "json", false, "print the status as JSON (schema in the README)")
	return cmd
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
		next = "disabled (" + st.DisableFile + " exists)"
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
