package trampoline

import (
	"fmt"
	"strings"
	"time"
)

// Status is what `status --json` prints about the store.
type Status struct {
	Store    string        `json:"store"`
	Booted   string        `json:"booted,omitempty"`
	Entries  []EntryStatus `json:"entries"`
	NextBoot NextBoot      `json:"next_boot"`
	LastBoot *Reason       `json:"last_boot_reason,omitempty"` // why the last boot was not the plain one
	// BootCount is the committed root's boots since its last good mark
	// (budget.go); absent when the store has no counter.
	BootCount *int `json:"boots_since_good_mark,omitempty"`
	// Layer is the trial layers (layer.trial, layer.fold, layer.failed)
	// and the last shadow check; absent when there is none of them.
	Layer *LayerStatus `json:"layer,omitempty"`
}

// EntryStatus is one protocol entry (or leftover) of the store.
type EntryStatus struct {
	Entry
	Kind    string    `json:"kind"`                   // image, subvolume, ...
	ID      uint64    `json:"subvolume_id,omitempty"` // a subvolume's ID
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Booted  bool      `json:"booted,omitempty"`
	Reason  *Reason   `json:"reason,omitempty"`
}

// NextBoot is what the trampoline will do at the next boot.
type NextBoot struct {
	Entry     string   `json:"entry"` // as named now; "" if nothing can boot
	Role      Role     `json:"role"`
	Trial     bool     `json:"trial"`
	TriesLeft int      `json:"tries_left,omitempty"` // trial boots left, the next one included
	Fallback  string   `json:"fallback,omitempty"`   // boots if the trial does not commit
	Actions   []string `json:"actions,omitempty"`    // renames the trampoline makes before mounting
	Summary   string   `json:"summary"`              // in plain words
}

// NewStatus builds the status from a listing, pure.
func NewStatus(dir string, st State, ents []DirEntry, reasons map[string]Reason, booted string) Status {
	s := Status{Store: dir, Booted: booted, Entries: []EntryStatus{}}
	for _, de := range ents {
		e := ParseName(de.Name, st.Suffix)
		if e.Role == RoleOther {
			continue
		}
		es := EntryStatus{Entry: e, Kind: de.Kind, ID: de.ID, Size: de.Size, ModTime: de.ModTime, Booted: de.Name == booted && booted != ""}
		if r, ok := reasons[FailedReasonFile]; ok && e.Role == RoleFailed {
			es.Reason = &r
		}
		s.Entries = append(s.Entries, es)
	}
	if r, ok := reasons[BootReasonFile]; ok {
		s.LastBoot = &r
	}
	if _, k, ok := st.BootCount(); ok {
		s.BootCount = &k
	}
	s.NextBoot = describe(Decide(st))
	if e := ParseName(booted, st.Suffix); e.Role == RoleTrying && st.Has(booted) {
		s.NextBoot.Summary = "running trial " + booted + ", not committed: run commit to keep it; " + s.NextBoot.Summary
	}
	return s
}

func describe(p BootPlan) NextBoot {
	nb := NextBoot{Entry: p.Source.Name, Role: p.Source.Role, Trial: p.Trial, Fallback: p.Fallback}
	for _, op := range p.Ops {
		nb.Actions = append(nb.Actions, op.String())
	}
	var sb strings.Builder
	sb.WriteString("next boot: ")
	switch {
	case p.Boot.Name == "":
		sb.WriteString("no bootable root in the store (" + p.Why + "); falls back to classic mode")
	case p.Trial && p.Source.Role == RoleStaged:
		nb.TriesLeft = p.Source.Tries
		fmt.Fprintf(&sb, "tries %s (new image, %s)", p.Source.Name, plural(p.Source.Tries, "try", "tries"))
	case p.Trial:
		nb.TriesLeft = p.Source.Tries
		fmt.Fprintf(&sb, "tries %s again (trial not committed yet, %s left)", p.Source.Name, plural(p.Source.Tries, "try", "tries"))
	default:
		fmt.Fprintf(&sb, "boots %s (%s)", p.Boot.Name, p.Why)
	}
	if p.Trial {
		fmt.Fprintf(&sb, "; if it does not commit, boots %s", p.Fallback)
	}
	for _, n := range p.Notes {
		if n.File == FailedReasonFile {
			fmt.Fprintf(&sb, "; %s is recorded as failed: %s", n.Entry, n.Why)
		}
	}
	nb.Summary = sb.String()
	return nb
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
