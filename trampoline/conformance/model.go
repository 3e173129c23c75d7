package conformance

import (
	"fmt"
	"sort"
	"strings"

	"github.com/overlayupd/overlayupd/trampoline"
)

// Setup is one starting state of the store: which roles exist.
type Setup struct {
	Root, Next, Prev, Failed bool
	Leftovers                bool // an rm-* and a .stage-* entry
	Trying                   int  // tries left of root.trying-K; -1: none
	Staged                   int  // tries of root.try-N; 0: none
}

func (s Setup) String() string {
	var p []string
	add := func(ok bool, n string) {
		if ok {
			p = append(p, n)
		}
	}
	add(s.Root, "root")
	add(s.Next, "next")
	add(s.Prev, "prev")
	add(s.Failed, "failed")
	add(s.Leftovers, "leftovers")
	add(s.Trying >= 0, fmt.Sprintf("trying-%d", s.Trying))
	add(s.Staged > 0, fmt.Sprintf("try-%d", s.Staged))
	return strings.Join(p, "+")
}

// Labels returns the entries of the setup, each labelled by its name without
// the suffix, so that tests can follow an image through renames.
func (s Setup) Labels(suffix string) Labels {
	l := Labels{}
	add := func(ok bool, r trampoline.Role, tries int) {
		if ok {
			n := trampoline.EntryName(r, tries, suffix)
			l[n] = strings.TrimSuffix(n, suffix)
		}
	}
	add(s.Root, trampoline.RoleCommitted, 0)
	add(s.Next, trampoline.RoleCommitting, 0)
	add(s.Prev, trampoline.RolePrevious, 0)
	add(s.Failed, trampoline.RoleFailed, 0)
	add(s.Trying >= 0, trampoline.RoleTrying, s.Trying)
	add(s.Staged > 0, trampoline.RoleStaged, s.Staged)
	if s.Leftovers {
		l["rm-old"] = "rm-old"
		l[".stage-old"] = ".stage-old"
	}
	return l
}

// Setups is every reachable starting state that holds a committed root.
// root.next never coexists with root.trying-K: commit renames the one into the
// other.
func Setups() []Setup {
	var out []Setup
	for _, rn := range [][2]bool{{true, false}, {false, true}, {true, true}} {
		for _, prev := range []bool{false, true} {
			for _, failed := range []bool{false, true} {
				for _, left := range []bool{false, true} {
					for trying := -1; trying <= 2; trying++ {
						if rn[1] && trying >= 0 {
							continue
						}
						for staged := 0; staged <= 2; staged++ {
							out = append(out, Setup{Root: rn[0], Next: rn[1], Prev: prev, Failed: failed,
								Leftovers: left, Trying: trying, Staged: staged})
						}
					}
				}
			}
		}
	}
	return out
}

// Labels maps entry names to the label of the image they hold: a pure model
// of a slot directory.
type Labels map[string]string

// State is the protocol state of the model.
func (l Labels) State(suffix string) trampoline.State {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	return trampoline.NewState(suffix, names...)
}

// Run applies ops to a copy of the model.
func (l Labels) Run(ops []trampoline.Op) (Labels, error) {
	c := Labels{}
	for k, v := range l {
		c[k] = v
	}
	for _, op := range ops {
		switch op.Kind {
		case trampoline.OpRename:
			if _, ok := c[op.From]; !ok {
				return c, fmt.Errorf("%s: no source", op)
			}
			if _, ok := c[op.To]; ok {
				return c, fmt.Errorf("%s: target exists", op)
			}
			c[op.To] = c[op.From]
			delete(c, op.From)
		case trampoline.OpExchange:
			a, aok := c[op.From]
			b, bok := c[op.To]
			if !aok || !bok {
				return c, fmt.Errorf("%s: missing entry", op)
			}
			c[op.From], c[op.To] = b, a
		case trampoline.OpRemove:
			delete(c, op.From)
		}
	}
	return c, nil
}

// Boot runs Decide on the model: the label that boots ("" for none), the plan,
// and the model after the plan's ops.
func (l Labels) Boot(suffix string) (string, trampoline.BootPlan, Labels) {
	p := trampoline.Decide(l.State(suffix))
	after, err := l.Run(p.Ops)
	if err != nil {
		return "", p, l
	}
	return after[p.Boot.Name], p, after
}

// Role returns the label held by the entry with role r, or "".
func (l Labels) Role(suffix string, r trampoline.Role) string {
	e, ok := l.State(suffix).Find(r)
	if !ok {
		return ""
	}
	return l[e.Name]
}

// Budget is how many more trial boots each label may get: N for root.try-N,
// K for root.trying-K.
func (l Labels) Budget(suffix string) map[string]int {
	out := map[string]int{}
	for _, e := range l.State(suffix).Entries() {
		if e.Role == trampoline.RoleStaged || e.Role == trampoline.RoleTrying {
			out[l[e.Name]] = max(out[l[e.Name]], e.Tries)
		}
	}
	return out
}
