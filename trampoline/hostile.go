package trampoline

import (
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
// number when that is taken), and returns what it moved where. A rename
// moves the directory entry, never what a link points at, and leaves the
// protocol's state as it was: it never saw these names.
func (s *Store) MoveHostile() ([][2]string, error) {
	ents, err := s.Backend.List()
	if err != nil {
		return nil, fmt.Errorf("list slot directory: %w", err)
	}
	taken := map[string]bool{}
	for _, e := range ents {
		taken[e.Name] = true
	}
	var t Transition
	var moved [][2]string
	for _, n := range HostileNames(ents, s.Backend.Suffix()) {
		to := HostilePrefix + n
		for i := 1; taken[to]; i++ {
			to = HostilePrefix + n + "." + strconv.Itoa(i)
		}
		taken[to] = true
		t.Ops = append(t.Ops, Op{Kind: OpRename, From: n, To: to})
		moved = append(moved, [2]string{n, to})
	}
	if len(t.Ops) == 0 {
		return nil, nil
	}
	if err := s.Run(t); err != nil {
		return nil, err
	}
	return moved, nil
}
