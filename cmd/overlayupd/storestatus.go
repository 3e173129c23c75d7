package main

import (
	"fmt"
	"io"
	"time"

	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// storeStatus is the "store" object of status --json: the protocol's status,
// plus the booted image's sha256 when asked for (--sha256).
type storeStatus struct {
	trampoline.Status
	Top          string       `json:"top"`
	Format       string       `json:"format"`
	BootedSHA256 string       `json:"booted_sha256,omitempty"`
	Trust        *trustStatus `json:"trust,omitempty"`
	// Watchdog is the trial watchdog of this boot: its keeper, or that a
	// trial runs without one; absent in a committed boot without a keeper.
	Watchdog *keeper.Report `json:"trial_watchdog,omitempty"`
}

func loadStoreStatus(e *env, st *trampoline.Store, sum bool) (*storeStatus, error) {
	// Not knowing the booted entry is no reason to show nothing: report it
	// as unknown.
	booted, _ := e.booted(st)
	status, err := st.Status(booted)
	if err != nil {
		return nil, err
	}
	out := &storeStatus{Status: status, Top: st.Top, Format: st.Format.Name()}
	out.Trust = loadTrustStatus(e, st, status.Entries)
	if e.keeper != nil {
		pid, cfg := e.keeper()
		trial := trampoline.ParseName(booted, st.Format.Suffix()).Role == trampoline.RoleTrying
		out.Watchdog = keeper.Describe(pid, cfg, keeper.Uptime(), trial)
	}
	if sum && booted != "" {
		if out.BootedSHA256, err = st.Format.Digest(st.SlotDir, booted); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func printStoreStatus(w io.Writer, s storeStatus) {
	fmt.Fprintf(w, "store: %s\n", s.Top)
	booted := false
	for _, e := range s.Entries {
		if e.Booted {
			booted = true
			fmt.Fprintf(w, "booted: %s, %s, %s", printable(e.Name), entrySize(e), e.ModTime.Local().Format(time.DateTime))
			if s.BootedSHA256 != "" {
				fmt.Fprintf(w, ", sha256 %s", s.BootedSHA256)
			}
			fmt.Fprintln(w)
		}
	}
	if !booted {
		fmt.Fprintln(w, "booted: not from an image of this store")
	}
	for _, e := range s.Entries {
		fmt.Fprintf(w, "  %-10s %-22s %14s  %s", e.Role, printable(e.Name), entrySize(e), e.ModTime.Local().Format(time.DateTime))
		switch e.Role {
		case trampoline.RoleStaged:
			fmt.Fprintf(w, "  (%d trial %s allowed)", e.Tries, plural(e.Tries, "boot", "boots"))
		case trampoline.RoleTrying:
			fmt.Fprintf(w, "  (%d more trial %s)", e.Tries, plural(e.Tries, "boot", "boots"))
		}
		if e.Reason != nil {
			fmt.Fprintf(w, "  reason: %s (%s)", printable(e.Reason.Why), e.Reason.Time.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	if s.Trust != nil {
		printTrustStatus(w, s.Trust)
	}
	if s.BootCount != nil && *s.BootCount > 0 {
		fmt.Fprintf(w, "boot budget: %d boot(s) of the committed root since its last good mark (overlayupd mark-good resets it)\n", *s.BootCount)
	}
	if s.LastBoot != nil {
		fmt.Fprintf(w, "last boot: %s: %s (%s)\n", printable(s.LastBoot.Entry), printable(s.LastBoot.Why), s.LastBoot.Time.Local().Format(time.DateTime))
	}
	printLayerStatus(w, s.Layer)
	if s.Watchdog != nil {
		fmt.Fprintf(w, "watchdog: %s\n", printable(s.Watchdog.Summary))
	}
	fmt.Fprintln(w, s.NextBoot.Summary)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// entrySize is what status shows of an entry's size: an image's bytes, a
// subvolume's ID (its size is not known without a tree walk).
func entrySize(e trampoline.EntryStatus) string {
	if e.Kind == "subvolume" {
		return fmt.Sprintf("subvolume %d", e.ID)
	}
	return overlay.HumanBytes(uint64(e.Size))
}

// printLayerStatus says where a trial's writes are, and what the last
// shadow check found.
func printLayerStatus(w io.Writer, l *trampoline.LayerStatus) {
	if l == nil {
		return
	}
	if l.Trial {
		fmt.Fprintf(w, "trial layer: %s holds the trial's writes (the committed root's persistent layer is read-only below it); commit keeps them, a failed trial discards them\n", trampoline.LayerTrial)
	}
	if l.FoldPending {
		fmt.Fprintf(w, "trial layer: %s holds a committed trial's writes: the next boot folds them into the persistent layer\n", trampoline.LayerFold)
	}
	if l.Failed {
		fmt.Fprintf(w, "trial layer: %s holds the last failed trial's writes, for diagnosis ('overlayupd gc' removes it)\n", trampoline.LayerFailed)
	}
	if r := l.Shadows; r != nil && (len(r.Files) > 0 || r.Error != "") {
		fmt.Fprintf(w, "shadows (%s): %s\n", r.Time.Local().Format(time.DateTime), printable(r.Summary()))
		for _, f := range r.Files {
			line := fmt.Sprintf("  %s: %s by %s; the layer's %s: %s", f.Path, f.Change, r.Root, f.Layer, f.Action)
			if f.Aside != "" {
				line += ", now " + f.Aside
			}
			fmt.Fprintln(w, printable(line))
		}
	}
}
