package layer

import (
	"fmt"
	"testing"
)

// TestPlan is the fold's decision at one name, for every pair of kinds: what
// the lower layer alone must show afterwards is what the upper one showed
// over it (see Plan's doc for the reasons).
func TestPlan(t *testing.T) {
	kinds := []Kind{None, Whiteout, Dir, OpaqueDir, Other}
	want := map[Kind]map[Kind][]Action{
		None:     {None: nil, Whiteout: nil, Dir: nil, OpaqueDir: nil, Other: nil},
		Whiteout: {None: {Move}, Whiteout: {Move}, Dir: {Aside, Move}, OpaqueDir: {Aside, Move}, Other: {Move}},
		Other:    {None: {Move}, Whiteout: {Move}, Dir: {Aside, Move}, OpaqueDir: {Aside, Move}, Other: {Move}},
		OpaqueDir: {None: {Move}, Whiteout: {Aside, Move}, Dir: {Aside, Move}, OpaqueDir: {Aside, Move},
			Other: {Aside, Move}},
		Dir: {None: {Move}, Whiteout: {MarkOpaque, Aside, Move}, Dir: {Merge}, OpaqueDir: {Merge},
			Other: {MarkOpaque, Aside, Move}},
	}
	for _, u := range kinds {
		for _, l := range kinds {
			got, w := fmt.Sprint(Plan(u, l)), fmt.Sprint(want[u][l])
			if got != w {
				t.Errorf("Plan(upper %s, lower %s) = %s, want %s", u, l, got, w)
			}
		}
	}
}

// TestPlanShape: a rename never lands on a directory (the kernel refuses to
// replace a non-empty one), so a Move over a directory is always preceded
// by Aside; and a Merge is only planned between two directories.
func TestPlanShape(t *testing.T) {
	kinds := []Kind{None, Whiteout, Dir, OpaqueDir, Other}
	for _, u := range kinds {
		for _, l := range kinds {
			p := Plan(u, l)
			aside := false
			for _, a := range p {
				switch a {
				case Aside:
					aside = true
				case Move:
					if l.IsDir() && !aside || u.IsDir() && l != None && !aside {
						t.Errorf("Plan(%s, %s) = %v renames onto a %s without setting it aside", u, l, p, l)
					}
				case Merge:
					if !u.IsDir() || !l.IsDir() {
						t.Errorf("Plan(%s, %s) = %v merges a non-directory", u, l, p)
					}
				}
			}
		}
	}
}
