package trampoline

import (
	"fmt"
	"sort"
)

// State is the set of names in a slot directory: the whole protocol state.
type State struct {
	Suffix string
	names  map[string]bool
}

// NewState builds the state of a directory holding names; suffix is the
// backend's entry suffix.
func NewState(suffix string, names ...string) State {
	st := State{Suffix: suffix, names: make(map[string]bool, len(names))}
	for _, n := range names {
		st.names[n] = true
	}
	return st
}

// Names lists the names in the state, sorted.
func (s State) Names() []string {
	out := make([]string, 0, len(s.names))
	for n := range s.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether name exists.
func (s State) Has(name string) bool { return s.names[name] }

// Entries parses every name, sorted by name.
func (s State) Entries() []Entry {
	var out []Entry
	for _, n := range s.Names() {
		out = append(out, ParseName(n, s.Suffix))
	}
	return out
}

// Find returns the entry with role r. Fixed-name roles have at most one entry.
// If several trying or staged entries exist (only by hand), the one with the
// fewest tries wins, so that a confusing store errs towards fewer trial boots.
func (s State) Find(r Role) (Entry, bool) {
	var best Entry
	found := false
	for _, e := range s.Entries() {
		if e.Role == r && (!found || e.Tries < best.Tries) {
			best, found = e, true
		}
	}
	return best, found
}

// HasCommitted reports whether a committed root exists: root, or root.next
// while a commit is in flight (invariant 1).
func (s State) HasCommitted() bool {
	_, r := s.Find(RoleCommitted)
	_, n := s.Find(RoleCommitting)
	return r || n
}

func (s State) name(r Role, tries int) string { return EntryName(r, tries, s.Suffix) }

func (s State) clone() State {
	c := NewState(s.Suffix)
	for n := range s.names {
		c.names[n] = true
	}
	return c
}

// Apply returns the state after op, with the same checks the kernel makes:
// a rename needs its source and no target, an exchange needs both.
func (s State) Apply(op Op) (State, error) {
	c := s.clone()
	switch op.Kind {
	case OpRename:
		if !c.names[op.From] {
			return s, fmt.Errorf("%s: source missing", op)
		}
		if c.names[op.To] {
			return s, fmt.Errorf("%s: target exists", op)
		}
		delete(c.names, op.From)
		c.names[op.To] = true
	case OpExchange:
		if !c.names[op.From] || !c.names[op.To] {
			return s, fmt.Errorf("%s: both entries must exist", op)
		}
	case OpRemove:
		delete(c.names, op.From)
	default:
		return s, fmt.Errorf("%s: unknown op", op)
	}
	return c, nil
}
