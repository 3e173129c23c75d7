package tests

// The persistent layer belongs to the committed root (issue 9, item 6;
// trampoline/layer.go): a trial writes into a layer of its own with the
// committed one read-only below it; a failed trial's writes go with it; a
// committed trial's are folded into the persistent layer at the next boot,
// resumed after a power cut; and the first boot of a new root names the
// files of the layer that hide what the new image changed.

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// layerScenario is a store disk with v1 committed, a persistent layer, and
// v2 and v3 to apply.
func layerScenario(t *testing.T) *storeScenario {
	t.Helper()
	return newStoreScenario(t, true, func(a *assets) map[string]string {
		return map[string]string{"v2": storeImage(t, a, "v2", nil), "v3": storeImage(t, a, "v3", nil)}
	})
}

const layerData = "/overlay-rw-layer/data"

// TestLayerTrialRolledBack (1): what a trial writes is in the trial's own
// layer, never in the committed root's; rebooted without a commit, the
// committed root boots without it, and the trial's writes are kept apart
// (roots/layer.failed) for diagnosis.
func TestLayerTrialRolledBack(t *testing.T) {
	sc := layerScenario(t)
	sc.boot("v1", "put:user,apply:v2")

	b := sc.boot("v2", "get:user,put:trial")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	must(t, b.console, `result: get user user from v1\n`) // the committed layer shows, read-only
	if replayed(t, sc.d).exists(layerData + "/var/t/trial") {
		t.Errorf("boot 2: the trial wrote into the committed root's persistent layer")
	}

	b = sc.boot("v1", "get:user,get:trial")
	sc.wantFailed(b, "root.trying-0.sqsh")
	must(t, b.console, `result: get user user from v1\n`)
	must(t, b.console, `result: get trial none\n`)
	if replayed(t, sc.d).exists(layerData + "/var/t/trial") {
		t.Errorf("boot 3: the rolled-back trial's file is in the committed root's persistent layer")
	}
	if got := replayed(t, sc.d).cat("/roots/layer.failed/data/var/t/trial"); got != "trial from v2\n" {
		t.Errorf("boot 3: the failed trial's writes kept apart: %q", got)
	}
	if b.status == nil || b.status.Store.Layer == nil || !b.status.Store.Layer.Failed {
		t.Errorf("boot 3: status does not show the failed trial's layer")
	}
}

// TestLayerTrialCommitted (2): a trial of two boots writes in both (its
// writes stay out of the committed layer meanwhile), then commits: the
// next boot folds them into the persistent layer, and the user's earlier
// files are kept. Then a commit cut right after its commit point (before
// the trial layer's rename) still keeps that trial's writes.
func TestLayerTrialCommitted(t *testing.T) {
	sc := layerScenario(t)
	sc.boot("v1", "put:user,apply:v2:2")

	b := sc.boot("v2", "put:first")
	sc.wantBooted(b, "root.trying-1.sqsh", "trying")
	if replayed(t, sc.d).exists(layerData + "/var/t/first") {
		t.Fatalf("boot 2: the trial wrote into the committed root's persistent layer")
	}
	b = sc.boot("v2", "get:first,put:second,commit,status")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	must(t, b.console, `result: get first first from v2\n`) // the trial's own earlier boot
	must(t, b.console, `result: after: entries .*layer\.fold`)
	must(t, b.console, `result: commit: what the trial wrote \(roots/layer\.fold\) joins the persistent layer at the next boot`)

	b = sc.boot("v2", "get:user,get:first,get:second,apply:v3")
	sc.wantBooted(b, "root.sqsh", "committed")
	must(t, b.console, `folding the committed trial's writes`)
	for _, w := range []string{"user user from v1", "first first from v2", "second second from v2"} {
		must(t, b.console, `result: get `+w+`\n`)
	}
	for f, want := range map[string]string{"user": "user from v1\n", "first": "first from v2\n", "second": "second from v2\n"} {
		if got := replayed(t, sc.d).cat(layerData + "/var/t/" + f); got != want {
			t.Errorf("the persistent layer's %s: %q, want %q", f, got, want)
		}
	}
	if replayed(t, sc.d).exists("/roots/layer.fold") || replayed(t, sc.d).exists("/roots/layer.trial") {
		t.Errorf("a trial layer is left after the fold")
	}

	// v3's trial commits, and the power is cut right after the commit point.
	v, b := sc.start("v3", "put:third,crashcommit:1")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	v.expect(`result: crash-run`, bootTimeout)
	mustNot(t, v.wait(bootTimeout), `result: crash-returned`)
	if c := replayed(t, sc.d); !c.exists("/roots/root.next.sqsh") || !c.exists("/roots/layer.trial") {
		t.Fatalf("the cut is not between the commit point and the layer's rename")
	}
	b = sc.boot("v3", "get:third,get:user")
	sc.wantBooted(b, "root.sqsh", "committed")
	must(t, b.console, `result: get third third from v3\n`)
	must(t, b.console, `result: get user user from v1\n`)
}

// TestLayerShadow (3): v1's /etc/conf edited by the user, v2 changes it.
// The first boot of v2 (its trial) names /etc/conf in the boot log and in
// status --json; keep (the default) shows the user's; with
// overlayupd.shadow=image the trial shows v2's (the committed layer
// untouched), and the first committed boot moves the user's to
// /overlay/rwdata/shadowed/1/etc/conf.
func TestLayerShadow(t *testing.T) {
	for _, policy := range []string{"keep", "image"} {
		t.Run(policy, func(t *testing.T) {
			s := newSession(t)
			conf := func(v string) func(*rootTree) {
				return func(r *rootTree) { r.write("etc/conf", "conf "+v+"\n", 0o644) }
			}
			v1, v2 := storeImage(t, s.a, "v1", conf("v1")), storeImage(t, s.a, "v2", conf("v2"))
			sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, v1, true, map[string]string{"v2": v2}),
				args: []string{"overlayupd.shadow=" + policy}}
			sc.boot("v1", "editconf,apply:v2")

			b := sc.boot("v2", "conf,commit")
			must(t, b.console, `shadow: /etc/conf changed by the new image`)
			wantShadow(t, b, policy, true)
			want := map[string]string{"keep": "mine", "image": "conf v2"}[policy]
			must(t, b.console, `result: conf `+want+`\n`)
			if got := replayed(t, sc.d).cat(layerData + "/etc/conf"); got != "mine\n" {
				t.Errorf("the trial changed the committed layer's /etc/conf: %q", got)
			}

			b = sc.boot("v2", "conf")
			sc.wantBooted(b, "root.sqsh", "committed")
			must(t, b.console, `result: conf `+want+`\n`)
			if policy == "image" {
				must(t, b.console, `result: aside mine\n`)
				wantShadow(t, b, policy, false)
			}
		})
	}
}

func wantShadow(t *testing.T, b *storeBoot, policy string, trial bool) {
	t.Helper()
	st := b.status
	if st == nil || st.Store == nil || st.Store.Layer == nil || st.Store.Layer.Shadows == nil {
		t.Fatalf("boot %d: status --json has no shadow report", b.n)
	}
	r := st.Store.Layer.Shadows
	action := map[string]string{"keep": "kept", "image": "image"}[policy]
	if policy == "image" && !trial {
		action = "moved"
	}
	if len(r.Files) != 1 || r.Files[0].Path != "/etc/conf" || r.Files[0].Change != "changed" || r.Files[0].Action != action || r.Trial != trial {
		t.Errorf("boot %d: shadow report %+v, want /etc/conf changed, %s (trial %v)", b.n, r, action, trial)
	}
	if action == "moved" && r.Files[0].Aside != "/overlay/rwdata/shadowed/1/etc/conf" {
		t.Errorf("boot %d: the user's file is at %q", b.n, r.Files[0].Aside)
	}
}

var reCount = regexp.MustCompile(`result: count (\d+) (\w+)`)

// TestLayerFoldPowerCut (4): the power is cut while the boot folds a
// committed trial's 4,000 files into the persistent layer: at the cut,
// every file is in the persistent layer or still in the trial's, never in
// both and never in neither; the next boot resumes the fold, and the
// persistent layer then holds each file once, with its contents.
func TestLayerFoldPowerCut(t *testing.T) {
	const n = 4000
	sc := layerScenario(t)
	sc.boot("v1", "put:user,seedmany,apply:v2")
	b := sc.boot("v2", fmt.Sprintf("many:%d,count,commit", n))
	want := reCount.FindStringSubmatch(b.console)
	if want == nil || want[1] != fmt.Sprint(n) {
		t.Fatalf("boot 2: the trial did not write %d files: %v", n, want)
	}

	// Cut the power in the middle of the fold: the test build's hook
	// (boot/foldhook.go) stops the fold with half the files moved, the
	// store is mounted with commit=1 for that boot so that the journal
	// commits what it moved within a second, and the power goes then. A
	// cut timed from the outside almost never lands inside: the fold of
	// 4,000 files takes a fraction of the journal's commit interval.
	const half = n / 2
	sc.boots++
	v := sc.s.boot(sc.d, sc.opts("", "rootflags=commit=1", fmt.Sprintf("overlayupd.test_fold_pause=%d", half)))
	v.expect(`folding the committed trial's writes`, bootTimeout)
	v.expect(fmt.Sprintf(`the fold waits here, %d entries moved`, half), bootTimeout)
	time.Sleep(3 * time.Second)
	v.kill()
	inLayer, inTrial := countAfterCut(t, sc.d)
	t.Logf("cut in the fold: %d files in the persistent layer, %d in the trial's", inLayer, inTrial)
	if inLayer+inTrial != n {
		t.Fatalf("at the cut: %d + %d files, want %d in all: lost or doubled", inLayer, inTrial, n)
	}
	// The hook counts every move of the fold, the trial's few other
	// writes (logs, status) among them: the cut is at half of the files,
	// give or take those.
	if inLayer > half || inLayer < half-16 {
		t.Fatalf("at the cut: %d files in the persistent layer, want the %d or a few fewer that the fold had moved", inLayer, half)
	}

	b = sc.boot("v2", "count,get:user")
	sc.wantBooted(b, "root.sqsh", "committed")
	must(t, b.console, `folded the committed trial's writes`)
	if got := reCount.FindStringSubmatch(b.console); got == nil || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("after the resumed fold: count %v, want %v", got, want)
	}
	must(t, b.console, `result: get user user from v1\n`)
	if replayed(t, sc.d).exists("/roots/layer.fold") {
		t.Errorf("roots/layer.fold is left after the resumed fold")
	}
}

// countAfterCut counts the files of /var/many/a in the persistent layer
// and in the trial's, after the cut.
func countAfterCut(t *testing.T, d *disk) (inLayer, inTrial int) {
	t.Helper()
	c := replayed(t, d)
	count := func(dir string) int {
		out, _ := c.debugfs(false, "ls -p "+dir)
		return len(regexp.MustCompile(`/f\d+/`).FindAllString(out, -1))
	}
	return count(layerData + "/var/many/a"), count("/roots/layer.fold/data/var/many/a")
}

// replayed is a copy of the disk whose journal is replayed, as the next
// mount would (debugfs reads what is in place, not the journal): what a
// power cut left. The disk itself is left for the next boot to recover.
func replayed(t *testing.T, d *disk) *disk {
	t.Helper()
	cp := d.path + ".cut"
	if out, err := exec.Command("cp", "--sparse=always", d.path, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	t.Cleanup(func() { os.Remove(cp) })
	fsck, err := testroot.LookTool("e2fsck")
	if err != nil {
		t.Fatal(err)
	}
	// Exit 1 means "errors corrected": the journal was replayed.
	if out, err := exec.Command(fsck, "-fy", cp).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck after the cut: %v\n%s", err, out)
		}
	}
	return &disk{t: t, path: cp, fstype: "ext4"}
}

// TestLayerBtrfs: the same on a btrfs store, where the trial layers are
// plain directories beside the read-only root subvolumes: a rolled-back
// trial's writes are gone, a committed trial's are folded in.
func TestLayerBtrfs(t *testing.T) {
	s := newSession(t)
	v1, v2, v3 := storeImage(t, s.a, "v1", nil), storeImage(t, s.a, "v2", nil), storeImage(t, s.a, "v3", nil)
	sc := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, map[string]string{"v2": v2, "v3": v3}, "overlay-rw-layer"), args: btrfsArgs}
	sc.boot("v1", "put:user,apply:v2")
	b := sc.boot("v2", "get:user,put:trial")
	sc.wantBooted(b, "root.trying-0", "trying")
	must(t, b.console, `result: get user user from v1\n`)
	b = sc.boot("v1", "get:trial,apply:v3")
	sc.wantFailed(b, "root.trying-0")
	must(t, b.console, `result: get trial none\n`)
	sc.boot("v3", "put:third,commit")
	b = sc.boot("v3", "get:third,get:user,get:trial")
	sc.wantBooted(b, "root", "committed")
	must(t, b.console, `folded the committed trial's writes`)
	must(t, b.console, `result: get third third from v3\n`)
	must(t, b.console, `result: get user user from v1\n`)
	must(t, b.console, `result: get trial none\n`)
}
