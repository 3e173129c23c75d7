package trampoline

import (
	"errors"
	"fmt"
	"strconv"
)

// HostilePrefix is what MoveHostile puts in front of a hostile name: no
// protocol step makes or reads a name that starts with it.
const HostilePrefix = ".hostile-"

// HostileNames returns the names of ents that are not entries (a symbolic
// link, a FIFO, a device or a socket: Kind "other") under a name the
// protocol uses, an entry's or the boot counter's. LoadState hides them,
// so that no boot mounts through them; but they still hold their names,
// and a protocol rename onto one fails (RENAME_NOREPLACE): a link named
// boots-1 beside boots-0 made every boot's count fail, so the boot budget
// never ran out and a committed root that cannot boot was never left.
func HostileNames(ents []DirEntry, suffix string) []string {
	var out []string
	for _, e := range ents {
		if e.Kind != "other" {
			continue
		}
		if _, counter := parseBootCount(e.Name); counter || ParseName(e.Name, suffix).Role != RoleOther {
			out = append(out, e.Name)
		}
	}
	return out
}

// MoveHostile renames the hostile entries of the slot directory
// (HostileNames) out of the protocol's way, to HostilePrefix+name (with a
// number when that is taken; a number alone when the name would be too
// long), and returns what it moved where. A rename moves the directory
// entry, never what a link points at, and leaves the protocol's state as
// it was: it never saw these names. Each name is moved on its own, past
// the failures of others (which err joins): one name that cannot move must
// not keep a link at boots-1 in place. The crash tests' Step hook does not
// run here: these are not the protocol's steps.
func (s *Store) MoveHostile() ([][2]string, error) {
	ents, err := s.Backend.List()
	if err != nil {
		return nil, fmt.Errorf("list slot directory: %w", err)
	}
	names := HostileNames(ents, s.Backend.Suffix())
	if len(names) == 0 {
		return nil, nil
	}
	if s.BeforeChange != nil {
		if err := s.BeforeChange(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrStoreReadOnly, s.SlotDir, err)
		}
	}
	taken := map[string]bool{}
	for _, e := range ents {
		taken[e.Name] = true
	}
	var moved [][2]string
	var errs []error
	for i, n := range names {
		to := HostilePrefix + n
		if len(to) > maxNameLen {
			to = HostilePrefix + strconv.Itoa(i)
		}
		for k, base := 1, to; taken[to]; k++ {
			to = base + "." + strconv.Itoa(k)
		}
		taken[to] = true
		if err := Do(s.Backend, Op{Kind: OpRename, From: n, To: to}); err != nil {
			errs = append(errs, fmt.Errorf("move %q aside: %w", n, err))
			continue
		}
		moved = append(moved, [2]string{n, to})
	}
	return moved, errors.Join(errs...)
}

// maxNameLen is the longest name a Linux filesystem takes (NAME_MAX).
const maxNameLen = 255
