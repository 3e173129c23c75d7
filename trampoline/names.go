package trampoline

import (
	"fmt"
	"strconv"
	"strings"
)

// Role is what an entry in the slot directory means to the protocol. The role is
// read from the entry's name alone: the name is the whole state.
type Role int

// The roles. See the package doc for the names that carry them.
const (
	RoleOther      Role = iota // not a protocol entry (reason files, the lock, ...)
	RoleCommitted              // root: boots by default
	RoleCommitting             // root.next: a commit in flight; committed, becomes root
	RoleTrying                 // root.trying-K: trial in progress, K more boots allowed
	RoleStaged                 // root.try-N: staged, N boots allowed
	RolePrevious               // root.prev: the previously committed root
	RoleFailed                 // root.failed: the last trial that never committed
	RoleRemoving               // rm-*: on its way out; gc removes it
	RoleStaging                // .stage-*: an apply that never finished; gc removes it
)

var roleNames = [...]string{"other", "committed", "committing", "trying", "staged", "previous", "failed", "removing", "staging"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return "role(" + strconv.Itoa(int(r)) + ")"
	}
	return roleNames[r]
}

// MarshalText makes roles readable in status --json.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role written by MarshalText, so that status --json
// can be decoded back into Status.
func (r *Role) UnmarshalText(b []byte) error {
	for i, n := range roleNames {
		if n == string(b) {
			*r = Role(i)
			return nil
		}
	}
	return fmt.Errorf("unknown role %q", b)
}

// Name prefixes and bases of the protocol.
const (
	StagePrefix  = ".stage-" // a new entry is made under this prefix, then staged by a rename
	RemovePrefix = "rm-"
	base         = "root"
	tryPrefix    = base + ".try-"
	tryingPrefix = base + ".trying-"
)

// MaxTries bounds --tries, and so the tries count a name may carry.
const MaxTries = 99

// Entry is one parsed name of the slot directory.
type Entry struct {
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Tries int    `json:"tries,omitempty"` // staged: boots allowed; trying: boots left after the current one
}

// ParseName reads the role of a slot-directory name. suffix is the backend's
// entry suffix (".sqsh" for image files, "" for subvolumes); protocol names must
// carry it, and tries counts must be canonical decimals (no sign, no leading zero)
// so that a name has exactly one reading and EntryName(ParseName(n)) == n.
func ParseName(name, suffix string) Entry {
	e := Entry{Name: name}
	switch {
	case strings.HasPrefix(name, StagePrefix):
		e.Role = RoleStaging
		return e
	case strings.HasPrefix(name, RemovePrefix):
		e.Role = RoleRemoving
		return e
	}
	b, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return e
	}
	switch b {
	case base:
		e.Role = RoleCommitted
	case base + ".next":
		e.Role = RoleCommitting
	case base + ".prev":
		e.Role = RolePrevious
	case base + ".failed":
		e.Role = RoleFailed
	default:
		if n, ok := parseCount(b, tryPrefix); ok && n >= 1 && n <= MaxTries {
			e.Role, e.Tries = RoleStaged, n
		} else if n, ok := parseCount(b, tryingPrefix); ok && n < MaxTries {
			e.Role, e.Tries = RoleTrying, n
		}
	}
	return e
}

func parseCount(s, prefix string) (int, bool) {
	d, ok := strings.CutPrefix(s, prefix)
	if !ok || d == "" || len(d) > 2 || (len(d) > 1 && d[0] == '0') {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(d)
	return n, err == nil
}

// EntryName is the name of a protocol role; tries is used by RoleStaged and
// RoleTrying. It returns "" for roles that have no fixed name.
func EntryName(r Role, tries int, suffix string) string {
	var b string
	switch r {
	case RoleCommitted:
		b = base
	case RoleCommitting:
		b = base + ".next"
	case RolePrevious:
		b = base + ".prev"
	case RoleFailed:
		b = base + ".failed"
	case RoleStaged:
		b = tryPrefix + strconv.Itoa(tries)
	case RoleTrying:
		b = tryingPrefix + strconv.Itoa(tries)
	default:
		return ""
	}
	return b + suffix
}
