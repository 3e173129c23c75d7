package tests

// Crash scenarios on a store disk (DESIGN.md, "The slot protocol",
// invariants 1, 3, 4 and 6): a store command run inside the guest with
// OVERLAYUPD_CRASH_AFTER_OP=N reboots the machine without sync (sysrq b)
// once N of its renames are durable; QEMU runs with -no-reboot, so the
// reboot ends the boot, and the next boot of the same disk shows what
// survived. Only what the command fsynced is on the disk then: a rename that
// was not fsynced, or an op order whose intermediate state boots the wrong
// root, makes these tests fail.
//
// The images are the store scenarios' images (store_test.go) with one more
// step, "crashrun", whose act= words are gc and crash:CMD:N[:IMAGE].

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/verity"
)

// crashRun is the crashrun step: it prints what the run step prints (show),
// then runs the actions in act=: gc, or crash:CMD:N[:vX], which runs
// `OVERLAYUPD_CRASH_AFTER_OP=N overlayupd CMD [/overlay/store/updates/vX.sqsh]`
// (crash:update:N:vX runs an update that writes vX into /etc/version)
// with its output straight on the console (no pipe that could hold back the
// hook's last words). A crash action that returns says so: the hook did not
// fire where the test expects it.
const crashRun = `
. /test/lib.sh
show
for a in $(arg act | tr , ' '); do
	set -- $(echo "$a" | tr : ' ')
	case $1 in
	gc)
		overlayupd gc 2>&1 | sed 's/^/result: gc: /'
		echo "result: gc rc=$?"
		echo "result: after-gc: entries $(ls -A /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ')" ;;
	crash)
		if [ "$2" = update ]; then
			echo "result: crash-run: OVERLAYUPD_CRASH_AFTER_OP=$3 overlayupd update (/etc/version $4)"
			OVERLAYUPD_CRASH_AFTER_OP=$3 overlayupd update -- sh -c "echo $4 > /etc/version"
		else
			img=
			[ -n "$4" ] && img=/overlay/store/updates/$4.sqsh
			echo "result: crash-run: OVERLAYUPD_CRASH_AFTER_OP=$3 overlayupd $2 $img"
			OVERLAYUPD_CRASH_AFTER_OP=$3 overlayupd $2 $img
		fi
		echo "result: crash-returned rc=$?" ;;
	esac
done
`

// crashImages builds v1 and v2 store images that also have the crashrun step.
func crashImages(t *testing.T, a *assets) (v1, v2 string) {
	t.Helper()
	add := func(r *rootTree) { r.step("crashrun", storeRunPrefix+crashRun) }
	return storeImage(t, a, "v1", add), storeImage(t, a, "v2", add)
}

// cloneDisk copies a (powered off) disk image, sparse, for another test.
func cloneDisk(t *testing.T, d *disk) *disk {
	t.Helper()
	img := filepath.Join(t.TempDir(), "store."+d.fstype)
	if err := run("", "cp", "--sparse=always", d.path, img); err != nil {
		t.Fatal(err)
	}
	return &disk{t: t, path: img, fstype: d.fstype}
}

// crash boots with the crashrun step doing act, whose last action must be
// crash:CMD:N[:vX]; it waits for the guest's reboot and checks that the
// image want ran and that the command rebooted at op N, not after returning.
func (sc *storeScenario) crash(want, act string) *storeBoot {
	t := sc.t
	t.Helper()
	sc.boots++
	o := sc.opts(act)
	o.step = "crashrun"
	v := sc.s.boot(sc.d, o)
	v.expect(`result: status .*\n`, bootTimeout)
	out := v.wait(bootTimeout)
	b := parseStoreBoot(t, sc.boots, out)
	sc.wantImage(b, want)
	n := act[strings.LastIndex(act, "crash:"):]
	n = strings.Split(n, ":")[2]
	if m := regexp.MustCompile(`result: crash-returned rc=\d+|harness: step-done`).FindString(out); m != "" {
		t.Fatalf("boot %d: the command did not crash at op %s (%q); console tail:\n%s", sc.boots, n, m, tail(out, 30))
	}
	must(t, out, `overlayupd: OVERLAYUPD_CRASH_AFTER_OP=`+n+`: rebooting without sync now`)
	return b
}

// wantEntryImage checks that the store entry name (in /roots) holds exactly
// the image file img, then its dm-verity tree, read from the powered-off
// disk with debugfs.
func wantEntryImage(t *testing.T, d *disk, name, img, label string) {
	t.Helper()
	want, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), name)
	d.debugfs(false, fmt.Sprintf("dump /roots/%s %s", name, dump))
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Errorf("/roots/%s: not on the disk (%v)", name, err)
		return
	}
	tr, err := verity.ReadTrailer(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Errorf("/roots/%s: %v", name, err)
		return
	}
	if tree, _ := verity.Compute(bytes.NewReader(want), nil); !bytes.Equal(got[:tr.ImageSize], want) || tr.Root != tree.Root {
		t.Errorf("/roots/%s holds an image of %d bytes that is not %s (%d bytes)", name, tr.ImageSize, label, len(want))
	}
}

// wantNoPending checks that the listing has no entry of an unfinished
// transition or a trial.
func (sc *storeScenario) wantNoPending(b *storeBoot) {
	sc.t.Helper()
	if m := regexp.MustCompile(`root\.next|root\.try|root\.trying|rm-|\.stage-`).FindString(b.entries); m != "" {
		sc.t.Errorf("boot %d: store holds %q: %s left over", b.n, b.entries, m)
	}
}

// commitOps is the number of ops of a commit from a trial when no root.prev
// exists: trying-K -> root.next, root -> root.prev, root.next -> root.
const commitOps = 3

// TestCrashCommit, invariant 3 (atomic commit) at every crash point: v1 is
// committed, v2 applied and booted as a trial; `commit` reboots without sync
// after N durable renames, N = 0 (health checks passed, nothing renamed) to
// the last. The next boot is v1 with the trial recorded as failed (N = 0), or
// v2 committed with v1 as root.prev (N >= 1: the commit point has passed) —
// nothing else. The trial is set up once (apply in the guest) and the disk
// cloned for each N.
func TestCrashCommit(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	base := &storeScenario{t: t, s: s, d: storeDisk(t, s, v1, false, map[string]string{"v2": v2})}
	b := base.boot("v1", "apply:v2,status")
	must(t, b.console, `result: after: entries .*root\.try-1\.sqsh`)
	if t.Failed() {
		return
	}
	for n := 0; n <= commitOps; n++ {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			s := newSession(t)
			sc := &storeScenario{t: t, s: s, d: cloneDisk(t, base.d)}
			b := sc.crash("v2", fmt.Sprintf("crash:commit:%d", n))
			sc.wantBooted(b, "root.trying-0.sqsh", "trying")

			want := "v2"
			if n == 0 {
				want = "v1"
			}
			b = sc.boot(want, "status")
			if n == 0 {
				// Not committed: the trial's one boot is used, it is failed.
				sc.wantBooted(b, "root.sqsh", "committed")
				sc.wantFailed(b, "root.trying-0.sqsh")
				sc.wantEntries(b, ".lock boot.reason failed.reason root.failed.sqsh root.sqsh")
				if b.status != nil && b.status.Store != nil && b.status.Store.NextBoot.Trial {
					t.Errorf("boot %d: the next boot is a trial after a failed one", b.n)
				}
				wantEntryImage(t, sc.d, "root.sqsh", v1, "v1")
				wantEntryImage(t, sc.d, "root.failed.sqsh", v2, "v2")
				return
			}
			// Committed: v2 is root, v1 root.prev, nothing half done.
			sc.wantBooted(b, "root.sqsh", "committed")
			sc.wantNoPending(b)
			if role, _, ok := b.status.entry("root.prev.sqsh"); !ok || role != "previous" {
				t.Errorf("boot %d: root.prev.sqsh role %q (present %v), want previous; store holds %q", b.n, role, ok, b.entries)
			}
			if _, _, ok := b.status.entry("root.failed.sqsh"); ok {
				t.Errorf("boot %d: a committed trial is recorded as failed; store holds %q", b.n, b.entries)
			}
			if b.status != nil && b.status.Store != nil && b.status.Store.NextBoot.Trial {
				t.Errorf("boot %d: the next boot is a trial after the commit", b.n)
			}
			wantEntryImage(t, sc.d, "root.sqsh", v2, "v2")
			wantEntryImage(t, sc.d, "root.prev.sqsh", v1, "v1")
		})
	}
}

// TestCrashApply, invariants 4 and 6 for apply: a crash after the image copy
// is fsynced but before it is renamed into the try slot (N = 0) leaves the
// entries as they were: v1 boots, nothing is staged, and gc removes the
// .stage-* leftover. Then, on the same disk, a crash right after the rename
// (N = 1, where apply would report success): the next boot is the v2 trial.
func TestCrashApply(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, v1, false, map[string]string{"v2": v2})}

	b := sc.crash("v1", "crash:apply:0:v2")
	sc.wantEntries(b, ".lock root.sqsh")

	// N = 0: the copy is there, not staged; gc removes it; then the
	// apply again, cut right after its rename.
	b = sc.crash("v1", "gc,crash:apply:1:v2")
	sc.wantBooted(b, "root.sqsh", "committed")
	if !regexp.MustCompile(`^\.lock (\.stage-\S+ )?root\.sqsh$`).MatchString(b.entries) {
		t.Errorf("boot %d: after the crash before the rename the store holds %q, want .lock, root.sqsh and a .stage-* leftover", b.n, b.entries)
	} else if !strings.Contains(b.entries, ".stage-") {
		t.Errorf("boot %d: no .stage-* leftover after a crash with the copy fsynced (store holds %q): the copy's directory entry was not durable", b.n, b.entries)
	}
	if b.status != nil && b.status.Store != nil && b.status.Store.NextBoot.Trial {
		t.Errorf("boot %d: the next boot is a trial although apply never renamed its copy", b.n)
	}
	must(t, b.console, `result: gc: removed \.stage-`)
	must(t, b.console, `result: gc rc=0`)
	must(t, b.console, `result: after-gc: entries \.lock root\.sqsh \n`)

	// N = 1: success is durable, the next boot tries v2.
	b = sc.boot("v2", "")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	sc.wantEntries(b, ".lock root.sqsh root.trying-0.sqsh")
}

// TestCrashRollback, invariants 1 and 6 for rollback after a commit (one
// RENAME_EXCHANGE of root and root.prev): cut before the exchange, the next
// boot is still v2; cut after it, v1.
func TestCrashRollback(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	sc := &storeScenario{t: t, s: s, d: storeDisk(t, s, v1, false, map[string]string{"v2": v2})}
	sc.boot("v1", "apply:v2")
	sc.boot("v2", "commit")

	b := sc.crash("v2", "crash:rollback:0")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock root.prev.sqsh root.sqsh")

	b = sc.crash("v2", "crash:rollback:1")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock root.prev.sqsh root.sqsh")

	b = sc.boot("v1", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock root.prev.sqsh root.sqsh")
	wantEntryImage(t, sc.d, "root.sqsh", v1, "v1")
	wantEntryImage(t, sc.d, "root.prev.sqsh", v2, "v2")
}
