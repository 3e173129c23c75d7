package trampoline

import (
	"fmt"
	"strings"
)

// OpKind is one kind of state change in the slot directory.
type OpKind int

// The three operations. Every op is followed by an fsync of the directory.
const (
	OpRename   OpKind = iota // renameat2(From, To, RENAME_NOREPLACE)
	OpExchange               // renameat2(From, To, RENAME_EXCHANGE): both exist, swap atomically
	OpRemove                 // delete From (only rm-* and .stage-* names; never a live role)
)

// Op is one step of a transition: data, so that a plan can be logged, tested and
// crash-tested before anything runs.
type Op struct {
	Kind OpKind
	From string
	To   string // empty for OpRemove
}

func (o Op) String() string {
	switch o.Kind {
	case OpRename:
		return fmt.Sprintf("rename %s -> %s", o.From, o.To)
	case OpExchange:
		return fmt.Sprintf("exchange %s <-> %s", o.From, o.To)
	case OpRemove:
		return "remove " + o.From
	}
	return fmt.Sprintf("op(%d) %s %s", int(o.Kind), o.From, o.To)
}

// Note is a diagnostic to record after a transition ran, e.g. why a trial
// failed. Notes are never state: losing one in a crash loses only the text.
type Note struct {
	File  string // reason file in the store directory, e.g. "failed.reason"
	Entry string // the entry the note is about, by its name before the transition
	Why   string
}

// Reason files written by notes.
const (
	FailedReasonFile = "failed.reason" // why root.failed failed
	BootReasonFile   = "boot.reason"   // why the last boot was not the plain one
)

// Transition is the list of ops that takes the store from one state to the next.
type Transition struct {
	Ops   []Op
	Notes []Note
}

func (t Transition) String() string {
	if len(t.Ops) == 0 {
		return "no change"
	}
	s := make([]string, len(t.Ops))
	for i, op := range t.Ops {
		s[i] = op.String()
	}
	return strings.Join(s, "; ")
}

// Deletes lists the entries the transition deletes, by the names they have
// before it: a removed rm-* name is traced back through the renames that
// made it.
func (t Transition) Deletes() []string {
	var out []string
	for i, op := range t.Ops {
		if op.Kind != OpRemove {
			continue
		}
		name := op.From
		for j := i - 1; j >= 0; j-- {
			if p := t.Ops[j]; p.Kind == OpRename && p.To == name {
				name = p.From
			}
		}
		out = append(out, name)
	}
	return out
}
