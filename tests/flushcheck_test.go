package tests

// The flush-point replay's check (flushreplay_test.go), as a pure function
// of what one rebuilt disk holds: its slot directory's names, which known
// image each protocol entry holds, and where the point lies in the
// recording. Table-driven tests below; no VM, no root.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

// flushPoint is what one rebuilt disk showed, read offline.
type flushPoint struct {
	entry int      // the FLUSH entry of the log this disk ends at
	names []string // the slot directory's names that are entries (LoadState)
	// images: for every entry, the known image it holds ("v1", "v2"), or
	// what is wrong with it ("partial", "unknown", an error)
	images     map[string]string
	marker     bool // /overlayupd-store is there
	trampoline bool // /sbin/init-overlay is a non-empty file
	// where the point lies: after apply reported success (its sentinel), in
	// the second recorded boot, after commit reported success
	applied, secondBoot, committed bool
}

// replay stages: the walk from v1 committed to v2 committed. A point's
// stage may never be lower than an earlier point's.
const (
	stageOld       = iota // v1 committed, no trial of v2
	stageStaged           // v2 staged (root.try-N): the next boot tries it
	stageTrying           // v2's try consumed (root.trying-K): a crash now fails it
	stageCommitted        // v2 committed (root.next or root)
)

var stageNames = [...]string{"v1 committed", "v2 staged", "v2 trying", "v2 committed"}

// protocolRoles are the roles whose entries must be whole images at every
// instant (a .stage-* entry or an rm-* may be anything).
var protocolRoles = map[trampoline.Role]bool{
	trampoline.RoleCommitted: true, trampoline.RoleCommitting: true, trampoline.RoleTrying: true,
	trampoline.RoleStaged: true, trampoline.RolePrevious: true, trampoline.RoleFailed: true,
}

// checkFlushPoint holds one point against the slot protocol's invariants
// (DESIGN.md): always bootable, one committed root, no half state, no going
// back, and success durable. prev is the previous point's stage (-1 for
// the first). It returns this point's stage (-1 when it has none) and the
// violations, one line each.
func checkFlushPoint(p flushPoint, prev int) (stage int, violations []string) {
	bad := func(format string, a ...any) { violations = append(violations, fmt.Sprintf(format, a...)) }
	if !p.marker || !p.trampoline {
		bad("the store is not bootable: marker %v, trampoline %v", p.marker, p.trampoline)
	}
	st := trampoline.NewState(".sqsh", p.names...)
	for _, e := range st.Entries() {
		if protocolRoles[e.Role] && p.images[e.Name] != "v1" && p.images[e.Name] != "v2" {
			bad("half state: %s holds %s", e.Name, p.images[e.Name])
		}
	}
	if !st.HasCommitted() {
		bad("no committed root: %s", strings.Join(p.names, " "))
	}
	plan := trampoline.Decide(st)
	img := imageAfter(p.images, plan.Ops)[plan.Boot.Name]
	role := trampoline.ParseName(plan.Boot.Name, ".sqsh").Role
	committedRole := role == trampoline.RoleCommitted || role == trampoline.RoleCommitting
	stage = -1
	_, trying := st.Find(trampoline.RoleTrying)
	switch {
	case plan.Boot.Name == "":
		bad("nothing boots: %s (%s)", strings.Join(p.names, " "), plan.Why)
	case plan.Trial && plan.Source.Role == trampoline.RoleStaged && img == "v2":
		stage = stageStaged
	case trying && p.images[firstOf(st, trampoline.RoleTrying)] == "v2" && !plan.Trial && img == "v1" && committedRole:
		stage = stageTrying // the boot fails the trial and boots v1
	case !plan.Trial && img == "v2" && committedRole:
		stage = stageCommitted
	case !plan.Trial && img == "v1" && committedRole && !trying:
		stage = stageOld
	default:
		bad("a state outside the walk: %s boots %s (%s, trial %v): %s", strings.Join(p.names, " "), plan.Boot.Name, img, plan.Trial, plan.Why)
	}
	if stage < 0 {
		return stage, violations
	}
	switch {
	case stage < prev:
		bad("went back: %s after %s", stageNames[stage], stageNames[prev])
	case p.committed && stage != stageCommitted:
		bad("commit reported success, but the disk boots %s (%s)", stageNames[stage], strings.Join(p.names, " "))
	case p.applied && stage < stageStaged:
		bad("apply reported success, but the disk boots %s (%s)", stageNames[stage], strings.Join(p.names, " "))
	case !p.secondBoot && stage > stageStaged:
		bad("%s before the trial's boot", stageNames[stage])
	}
	return stage, violations
}

// imageAfter follows the images through a plan's ops: which image each
// name holds once they ran.
func imageAfter(images map[string]string, ops []trampoline.Op) map[string]string {
	m := make(map[string]string, len(images))
	for k, v := range images {
		m[k] = v
	}
	for _, op := range ops {
		switch op.Kind {
		case trampoline.OpRename:
			m[op.To] = m[op.From]
			delete(m, op.From)
		case trampoline.OpExchange:
			m[op.To], m[op.From] = m[op.From], m[op.To]
		case trampoline.OpRemove:
			delete(m, op.From)
		}
	}
	return m
}

func firstOf(st trampoline.State, r trampoline.Role) string {
	e, _ := st.Find(r)
	return e.Name
}

// TestCheckFlushPoint: the check finds each way a rebuilt disk can break
// the protocol, and passes the states of a good walk.
func TestCheckFlushPoint(t *testing.T) {
	pt := func(kv ...string) flushPoint {
		p := flushPoint{images: map[string]string{}, marker: true, trampoline: true}
		for i := 0; i < len(kv); i += 2 {
			p.names = append(p.names, kv[i])
			p.images[kv[i]] = kv[i+1]
		}
		return p
	}
	with := func(p flushPoint, f func(*flushPoint)) flushPoint { f(&p); return p }
	applied := func(p *flushPoint) { p.applied = true }
	second := func(p *flushPoint) { p.applied, p.secondBoot = true, true }
	committed := func(p *flushPoint) { p.applied, p.secondBoot, p.committed = true, true, true }
	cases := []struct {
		name  string
		p     flushPoint
		prev  int
		stage int
		want  string // a violation containing this; "" for none
	}{
		{"v1 only", pt("root.sqsh", "v1"), -1, stageOld, ""},
		{"a stage file being written", pt("root.sqsh", "v1", ".stage-1", "partial"), stageOld, stageOld, ""},
		{"staged", with(pt("root.sqsh", "v1", "root.try-1.sqsh", "v2"), applied), stageOld, stageStaged, ""},
		{"staged before apply said so", pt("root.sqsh", "v1", "root.try-1.sqsh", "v2"), stageOld, stageStaged, ""},
		{"apply lost", with(pt("root.sqsh", "v1", ".stage-1", "v2"), applied), stageOld, stageOld, "apply reported success"},
		{"half staged", pt("root.sqsh", "v1", "root.try-1.sqsh", "partial"), stageOld, -1, "half state: root.try-1.sqsh holds partial"},
		{"trying", with(pt("root.sqsh", "v1", "root.trying-0.sqsh", "v2"), second), stageStaged, stageTrying, ""},
		{"trying in the first boot", with(pt("root.sqsh", "v1", "root.trying-0.sqsh", "v2"), applied), stageStaged, stageTrying, "before the trial's boot"},
		{"commit point", with(pt("root.sqsh", "v1", "root.next.sqsh", "v2"), second), stageTrying, stageCommitted, ""},
		{"no root, root.next", with(pt("root.prev.sqsh", "v1", "root.next.sqsh", "v2"), second), stageCommitted, stageCommitted, ""},
		{"committed", with(pt("root.prev.sqsh", "v1", "root.sqsh", "v2"), committed), stageCommitted, stageCommitted, ""},
		{"commit lost", with(pt("root.sqsh", "v1", "root.trying-0.sqsh", "v2"), committed), stageTrying, stageTrying, "commit reported success"},
		{"went back", with(pt("root.sqsh", "v1", "root.try-1.sqsh", "v2"), second), stageTrying, stageStaged, "went back"},
		{"commit undone", with(pt("root.sqsh", "v1", "root.failed.sqsh", "v2"), second), stageCommitted, stageOld, "went back"},
		{"no committed root", pt("root.try-1.sqsh", "v2"), stageOld, stageStaged, "no committed root"},
		{"nothing", pt(), -1, -1, "nothing boots"},
		{"no marker", with(pt("root.sqsh", "v1"), func(p *flushPoint) { p.marker = false }), -1, stageOld, "not bootable"},
		{"no trampoline", with(pt("root.sqsh", "v1"), func(p *flushPoint) { p.trampoline = false }), -1, stageOld, "not bootable"},
		{"wrong image committed", pt("root.sqsh", "v3"), -1, -1, "half state: root.sqsh holds v3"},
	}
	for _, c := range cases {
		stage, v := checkFlushPoint(c.p, c.prev)
		got := strings.Join(v, "; ")
		if stage != c.stage {
			t.Errorf("%s: stage %d, want %d (%s)", c.name, stage, c.stage, got)
		}
		switch {
		case c.want == "" && len(v) > 0:
			t.Errorf("%s: violations %q, want none", c.name, got)
		case c.want != "" && !strings.Contains(got, c.want):
			t.Errorf("%s: violations %q, want one saying %q", c.name, got, c.want)
		}
	}
}
