package tests

// Power cuts at random points (issue 9, item 8): a store disk goes through
// a seeded random walk of apply, commit, rollback and trial boots, and QEMU
// is killed (the power is cut: the guest's page cache is lost) at a random
// moment of each step: during the command, just after it reported success,
// or during the boot itself. The next boot checks the invariants of the
// slot protocol against what the previous step reported before the cut:
//
//   - always bootable: every boot reaches an image's run step;
//   - one committed root, and status reads;
//   - success is durable: an apply that said rc=0 boots its image as the
//     trial next; a commit that said rc=0 boots the committed trial's image
//     as the committed root; a rollback that said rc=0 does not boot the
//     root it rolled back from;
//   - try once: a trial that was cut without a commit is not booted again.
//
// OVERLAYUPD_POWERCUTS sets the number of cuts (default 50: make test;
// make crashtest runs 500), OVERLAYUPD_POWERCUT_SEED the seed (printed, so
// a failure can be replayed).

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cutModel is what the walk knows, from the boots it saw.
type cutModel struct {
	committed string // image of the committed root, as last booted
	prev      string // image of the previous root, "" when none is known
	// expectations for the next boot, from what the last step reported
	wantTrial     string // an apply said rc=0: boot this image as the trial
	wantCommitted string // a commit said rc=0: boot this image as committed
	notEntry      string // a rollback said rc=0: not this entry (bootedID)
	notImage      string // the image of notEntry, for the message
	// the last boot was a trial (tries left 0) and nothing committed it:
	// its entry (bootedID) and image. By entry, not image: an apply of the
	// same image during the trial stages a new entry that boots next as a
	// trial under the same name, root.trying-0, legitimately.
	cutTrial      string
	cutTrialImage string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestPowerCutsRandom(t *testing.T) {
	cuts := envInt("OVERLAYUPD_POWERCUTS", 50)
	seed := uint64(envInt("OVERLAYUPD_POWERCUT_SEED", 20261201))
	t.Logf("power cuts: %d, seed %d (OVERLAYUPD_POWERCUTS, OVERLAYUPD_POWERCUT_SEED)", cuts, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	images := []string{"v1", "v2", "v3"}
	sc := newStoreScenario(t, false, func(a *assets) map[string]string {
		return map[string]string{"v2": storeImage(t, a, "v2", nil), "v3": storeImage(t, a, "v3", nil)}
	})
	// The boot budget is off here: a walk that cuts three committed boots
	// in a row would see root.prev come back, at a point that depends on
	// whether the cut came before or after the count's rename. The
	// budget's own crash safety is the conformance suite's (a crash after
	// every step of the fallback, on every backend) and TestStoreBootBudget's.
	sc.args = append(sc.args, "overlayupd.boot_budget=0")
	m := cutModel{committed: "v1"}
	var boots, violations int
	kinds := map[string]int{}
	violate := func(format string, a ...any) {
		violations++
		t.Errorf("cut %d, boot %d: "+format+" (seed %d; logs in %s)", append([]any{kinds["total"], sc.boots}, append(a, seed, sc.s.logDir)...)...)
	}
	// check holds a boot that reached its run step against the model, and
	// moves the model on.
	check := func(b *storeBoot) (role string) {
		boots++
		role, problems := m.check(b)
		for _, p := range problems {
			violate("%s", p)
		}
		return role
	}
	var role string
	first := sc.boot("v1", "")
	role = check(first)
	for i := 0; i < cuts; i++ {
		kinds["total"] = i + 1
		// The step is chosen before the boot shows what it runs: a trial is
		// expected when an apply said rc=0 (or the last boot was a trial that
		// the boot cut may have left).
		var act, kind string
		r := rng.IntN(100)
		if m.wantTrial != "" {
			role = "trying"
		}
		switch {
		case role == "trying" && r < 60:
			kind, act = "commit", "cutmark,commit,hang"
		case role == "trying":
			kind, act = "trial", "cutmark,hang"
		case r < 15:
			kind = "boot" // cut while the trampoline and init run
		case r < 30 && m.prev != "":
			kind, act = "rollback", "cutmark,rollback,hang"
		default:
			var next string
			for next == "" || next == m.committed {
				next = images[rng.IntN(len(images))]
			}
			if next == "v1" {
				next = "v2" // v1 is not in updates/: re-apply v2 or v3
				if m.committed == "v2" {
					next = "v3"
				}
			}
			kind, act = "apply:"+next, "cutmark,gc,apply:"+next+",hang"
		}
		kinds[strings.SplitN(kind, ":", 2)[0]]++
		sc.boots++
		v := sc.s.boot(sc.d, sc.opts(act))
		if kind == "boot" {
			time.Sleep(time.Duration(rng.IntN(6000)) * time.Millisecond)
			out := v.console()
			v.kill()
			if reStatus.MatchString(out) {
				role = check(parseStoreBoot(t, sc.boots, out))
				// The boot's own step may have been cut: a trial stays a trial
				// only until its next boot.
				if role == "trying" {
					m.cutTrialBy(parseStoreBoot(t, sc.boots, out))
				}
			}
			continue
		}
		v.expect(`result: status .*\n`, bootTimeout)
		b := parseStoreBoot(t, sc.boots, v.console())
		role = check(b)
		if t.Failed() && violations > 3 {
			t.FailNow()
		}
		v.expect(`result: cut-here\n`, bootTimeout)
		// The action takes 0.5-3 s under emulation: cut anywhere in it, or
		// after it reported.
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Millisecond)
		out := v.console()
		v.kill()
		rc := func(cmd string) bool {
			return regexp.MustCompile(`result: ` + cmd + ` rc=0\n`).MatchString(out)
		}
		switch {
		case strings.HasPrefix(kind, "apply:") && rc("apply"):
			m.wantTrial = strings.TrimPrefix(kind, "apply:")
		case kind == "commit" && rc("commit"):
			m.wantCommitted = b.image
		case kind == "rollback" && rc("rollback"):
			m.notEntry, m.notImage = b.status.bootedID(), b.image
		}
		if role == "trying" && !(kind == "commit" && rc("commit")) && b.status != nil && b.status.Store.NextBoot.Role != "trying" {
			m.cutTrialBy(b)
		}
	}
	sc.boots++
	last := sc.s.run(sc.d, sc.opts(""))
	if !reStatus.MatchString(last) {
		violate("the last boot did not reach its run step:\n%s", tail(last, 30))
	} else {
		check(parseStoreBoot(t, sc.boots, last))
	}
	delete(kinds, "total")
	fmt.Printf("power cuts: %d cuts (%v), %d boots checked, %d violations, seed %d\n", cuts, kinds, boots, violations, seed)
}

// check holds a boot that reached its run step against the model: the
// booted entry's role, and what breaks the protocol's invariants. It moves
// the model on: the expectations were for this boot only.
func (m *cutModel) check(b *storeBoot) (role string, problems []string) {
	if b.status == nil || b.status.Store == nil {
		return "", []string{fmt.Sprintf("status --json did not read: %s", tail(b.console, 5))}
	}
	name, role := b.status.booted()
	committed := 0
	for _, e := range b.status.Store.Entries {
		if e.Role == "committed" {
			committed++
		}
	}
	if committed != 1 {
		problems = append(problems, fmt.Sprintf("%d committed roots in %s", committed, b.entries))
	}
	switch {
	case m.wantTrial != "" && (b.image != m.wantTrial || role != "trying"):
		problems = append(problems, fmt.Sprintf("apply reported success, but the next boot ran %s as %s (%s), not %s as the trial", b.image, role, name, m.wantTrial))
	case m.wantCommitted != "" && (b.image != m.wantCommitted || role != "committed"):
		problems = append(problems, fmt.Sprintf("commit reported success, but the next boot ran %s as %s (%s), not %s committed", b.image, role, name, m.wantCommitted))
	case m.notEntry != "" && b.status.bootedID() == m.notEntry:
		problems = append(problems, fmt.Sprintf("rollback reported success, but the next boot ran the same root (%s, %s) again", m.notImage, m.notEntry))
	case m.cutTrial != "" && role == "trying" && b.status.bootedID() == m.cutTrial:
		problems = append(problems, fmt.Sprintf("the trial of %s was cut without a commit, but boots again as %s (%s)", m.cutTrialImage, name, m.cutTrial))
	}
	if role == "committed" {
		if b.image != m.committed {
			m.prev = m.committed
		}
		m.committed = b.image
	}
	m.wantTrial, m.wantCommitted, m.notEntry, m.notImage, m.cutTrial, m.cutTrialImage = "", "", "", "", "", ""
	return role, problems
}

// cutTrialBy notes that b, a trial with no tries left, was cut without a
// commit: its entry must not boot again.
func (m *cutModel) cutTrialBy(b *storeBoot) {
	m.cutTrial, m.cutTrialImage = b.status.bootedID(), b.image
}
