package tests

// Btrfs-store scenarios (the btrfs issue's VM table): the kernel mounts a
// btrfs store's top level (rootfstype=btrfs rootflags=subvolid=5) and the
// trampoline boots a read-only subvolume from /roots by the same protocol
// as the squashfs store. The store is made by `overlayupd store init
// --btrfs` on the host, on a loop-mounted btrfs inside a private mount
// namespace (nothing reaches the host's mounts); the run step's actions
// update, apply, commit, roll back and gc inside the guest.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// btrfsStoreDisk makes a btrfs store disk with v1 unpacked as the committed
// root, the update images in /updates.
func btrfsStoreDisk(t *testing.T, s *session, v1 string, updates map[string]string, dirs ...string) *disk {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "store.btrfs")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(512 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := run("", "mkfs.btrfs", "-q", "-f", "-L", "store", img); err != nil {
		t.Fatalf("mkfs.btrfs: %v", err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount -o loop,subvolid=5 "$IMG" "$MNT"
trap 'umount "$MNT"' EXIT
"$BIN" store init "$MNT" --btrfs --image "$V1" $TRAMPOLINE
mkdir "$MNT/updates"
for u in $UPDATES; do cp "$u" "$MNT/updates/"; done
for d in $DIRS; do mkdir -p "$MNT/$d"; done
`
	var ups []string
	for name, p := range updates {
		dst := filepath.Join(dir, name+".sqsh")
		if err := os.Link(p, dst); err != nil {
			if err := run("", "cp", p, dst); err != nil {
				t.Fatal(err)
			}
		}
		ups = append(ups, dst)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "IMG="+img, "MNT="+mnt, "BIN="+s.a.bin, "TRAMPOLINE="+joinFields(s.a.trampolineArgs()), "V1="+v1, "UPDATES="+joinFields(ups), "DIRS="+joinFields(dirs))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("store init --btrfs in a private mount namespace: %v\n%s", err, out)
	}
	return &disk{t: t, path: img, fstype: "btrfs"}
}

func joinFields(f []string) string {
	out := ""
	for i, s := range f {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

func newBtrfsScenario(t *testing.T, updates func(a *assets) map[string]string) *storeScenario {
	t.Helper()
	s := newSession(t)
	var u map[string]string
	if updates != nil {
		u = updates(s.a)
	}
	return &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, storeImage(t, s.a, "v1", nil), u), args: btrfsArgs}
}

// btrfsArgs are the kernel parameters of a btrfs store.
var btrfsArgs = []string{"rootfstype=btrfs", "rootflags=subvolid=5"}

var reDF = regexp.MustCompile(`(?m)^result: df (\d+)$`)

// dfs are the store's free KiB at each df action of a boot.
func dfs(t *testing.T, b *storeBoot) []int {
	t.Helper()
	var out []int
	for _, m := range reDF.FindAllStringSubmatch(b.console, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// TestBtrfsStoreUpdate: cases b (update -- false: exit 1, nothing staged,
// no leftover subvolume), c (an update that fills the disk: nothing staged,
// the space back), a (update -- a change, the trial shows it, commit, the
// next boot runs it committed).
func TestBtrfsStoreUpdate(t *testing.T) {
	sc := newBtrfsScenario(t, nil)
	b := sc.boot("v1", "df,update-false,update-fill,df,gc,df,status")
	sc.wantBooted(b, "root", "committed")
	if free := dfs(t, b); len(free) != 3 || free[1] < free[0]-32*1024 || free[2] < free[0]-32*1024 {
		t.Errorf("free KiB before the filling update, after it and after gc: %v; want the space back", free)
	}
	must(t, b.console, `result: update-false rc=1`)
	must(t, b.console, `result: update-false: .*false exited with 1; nothing staged`)
	must(t, b.console, `result: update-fill rc=[1-9]`)
	must(t, b.console, `result: update-fill: .*nothing staged \(the store is full: 'overlayupd gc' frees space\)`)
	must(t, b.console, `result: gc rc=0`)
	must(t, b.console, `result: after: entries \.lock root \n`)

	// a: update, then the trial runs the change.
	b = sc.boot("v1", "update-ver:v2,status")
	must(t, b.console, `result: update rc=0`)
	must(t, b.console, `result: update: staged root\.try-1`)
	must(t, b.console, `result: after: entries \.lock root root\.try-1 \n`)

	b = sc.boot("v2", "commit,status")
	sc.wantBooted(b, "root.trying-0", "trying")
	must(t, b.console, `result: after: entries \.lock root root\.prev \n`)

	b = sc.boot("v2", "")
	sc.wantBooted(b, "root", "committed")
}

// TestBtrfsStoreApply: cases f (apply of a squashfs image onto the btrfs
// store, trial, commit, rollback), g (a trial whose init panics: the
// committed subvolume boots next) and h (gc while booted into the entry it
// would delete: refused, nothing deleted).
func TestBtrfsStoreApply(t *testing.T) {
	sc := newBtrfsScenario(t, func(a *assets) map[string]string {
		return map[string]string{
			"v2": storeImage(t, a, "v2", nil),
			"vbad": storeImage(t, a, "vbad", func(r *rootTree) {
				r.write("sbin/init", "#!/bin/sh\necho \"result: image vbad: init exits\"\nexit 1\n", 0o755)
			}),
		}
	})
	// f
	b := sc.boot("v1", "apply:v2,status")
	must(t, b.console, `result: after: entries \.lock root root\.try-1 \n`)
	b = sc.boot("v2", "commit")
	sc.wantBooted(b, "root.trying-0", "trying")
	b = sc.boot("v2", "rollback")
	sc.wantBooted(b, "root", "committed")
	b = sc.boot("v1", "apply:vbad")
	sc.wantBooted(b, "root", "committed")

	// g: the trial's init exits, the kernel panics; the committed root is next.
	sc.boots++
	v := sc.s.boot(sc.d, sc.opts(""))
	v.expect(`result: image vbad: init exits`, bootTimeout)
	v.expect(`Kernel panic - not syncing: Attempted to kill init`, lineTimeout)
	v.wait(60e9)
	b = sc.boot("v1", "apply:v2")
	sc.wantBooted(b, "root", "committed")
	sc.wantFailed(b, "root.trying-0")

	// h: booted into the trial, rolled back: the trial is root.failed, and
	// gc would delete the running root. It refuses, and changes nothing.
	b = sc.boot("v2", "rollback,gc,status")
	sc.wantBooted(b, "root.trying-0", "trying")
	must(t, b.console, `result: gc: .*root\.failed is mounted`)
	must(t, b.console, `result: gc rc=1`)
	must(t, b.console, `result: after: entries \.lock boot\.reason failed\.reason root root\.failed root\.prev \n`)
	must(t, b.console, `result: image v2`)

	b = sc.boot("v1", "gc,status")
	sc.wantBooted(b, "root", "committed")
	must(t, b.console, `result: gc rc=0`)
	must(t, b.console, `result: after: entries \.lock boot\.reason root root\.prev \n`)
}

// TestBtrfsCrashCommit: invariant 3 on the btrfs store, at every crash
// point of a commit (renames of read-only subvolumes, each followed by an
// fsync of the directory, which forces a full btrfs commit): the next boot
// is v1 with the trial failed (N = 0) or v2 committed (N >= 1).
func TestBtrfsCrashCommit(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	base := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, map[string]string{"v2": v2}), args: btrfsArgs}
	b := base.boot("v1", "apply:v2,status")
	must(t, b.console, `result: after: entries \.lock root root\.try-1 \n`)
	if t.Failed() {
		return
	}
	for n := 0; n <= commitOps; n++ {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			s := newSession(t)
			sc := &storeScenario{t: t, s: s, d: cloneDisk(t, base.d), args: btrfsArgs}
			b := sc.crash("v2", fmt.Sprintf("crash:commit:%d", n))
			sc.wantBooted(b, "root.trying-0", "trying")
			if n == 0 {
				b = sc.boot("v1", "status")
				sc.wantBooted(b, "root", "committed")
				sc.wantFailed(b, "root.trying-0")
				sc.wantEntries(b, ".lock boot.reason failed.reason root root.failed")
				return
			}
			b = sc.boot("v2", "status")
			sc.wantBooted(b, "root", "committed")
			sc.wantNoPending(b)
			if n < commitOps {
				// The boot finished the interrupted commit, and says so.
				sc.wantEntries(b, ".lock boot.reason root root.prev")
			} else {
				sc.wantEntries(b, ".lock root root.prev")
			}
		})
	}
}

// TestBtrfsCrashUpdate: a power cut after the update's snapshot is sealed
// but before it is staged (N = 0) leaves the entries as they were (v1 boots,
// no trial) and a .stage-* leftover that gc removes; right after the stage
// rename (N = 1, where update reports success), the next boot is the trial.
func TestBtrfsCrashUpdate(t *testing.T) {
	s := newSession(t)
	v1, _ := crashImages(t, s.a)
	sc := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, nil), args: btrfsArgs}
	b := sc.crash("v1", "crash:update:0:v2")
	sc.wantEntries(b, ".lock root")

	b = sc.crash("v1", "gc,crash:update:1:v2")
	sc.wantBooted(b, "root", "committed")
	if !regexp.MustCompile(`^\.lock \.stage-\S+ root$`).MatchString(b.entries) {
		t.Errorf("boot %d: after the crash before staging the store holds %q, want .lock, a .stage-* leftover and root", b.n, b.entries)
	}
	if b.status != nil && b.status.Store != nil && b.status.Store.NextBoot.Trial {
		t.Errorf("boot %d: the next boot is a trial although update never staged", b.n)
	}
	must(t, b.console, `result: gc: removed \.stage-`)
	must(t, b.console, `result: after-gc: entries \.lock root \n`)

	b = sc.boot("v2", "")
	sc.wantBooted(b, "root.trying-0", "trying")
	sc.wantEntries(b, ".lock root root.trying-0")
}

var (
	reView      = regexp.MustCompile(`(?m)^result: view (\S+)$`)
	reLowerView = regexp.MustCompile(`(?m)^result: lowerview (\S+)$`)
	reLayer     = regexp.MustCompile(`(?m)^result: layer (.*)$`)
)

func find1(t *testing.T, b *storeBoot, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(b.console)
	if m == nil {
		t.Fatalf("boot %d: no %q line; console tail:\n%s", b.n, re, tail(b.console, 20))
	}
	if m[1] == "d41d8cd98f00b204e9800998ecf8427e" { // md5 of nothing
		t.Fatalf("boot %d: %q digests an empty tree", b.n, re)
	}
	return m[1]
}

// persistScenario is a btrfs store with a persistent writable layer whose
// images have /etc/doomed for the tune action to delete.
func persistScenario(t *testing.T) *storeScenario {
	t.Helper()
	s := newSession(t)
	v1 := storeImage(t, s.a, "v1", func(r *rootTree) { r.write("etc/doomed", "doomed\n", 0o644) })
	d := btrfsStoreDisk(t, s, v1, nil, "overlay-rw-layer")
	return &storeScenario{t: t, s: s, d: d, args: btrfsArgs}
}

// TestBtrfsPersist: case d: files written and deleted in the overlay (a
// persistent layer), persist, reboot: the trial's root itself (the lower
// layer) is exactly the overlay's view from before; commit: the next boot
// starts the layer empty (the old one moved aside) and still shows that view.
func TestBtrfsPersist(t *testing.T) {
	sc := persistScenario(t)
	b := sc.boot("v1", "tune,view,persist,layer,status")
	view := find1(t, b, reView)
	must(t, b.console, `result: persist rc=0`)
	must(t, b.console, `result: persist: persisted the overlay's changes .* into root\.try-1`)
	must(t, b.console, `result: after: entries \.lock layer\.base persist\.pending root root\.try-1 \n`)

	b = sc.boot("v1", "lowerview,commit,status")
	sc.wantBooted(b, "root.trying-0", "trying")
	if got := find1(t, b, reLowerView); got != view {
		t.Errorf("boot 2: the persisted root's tree digests to %s, want the overlay's view %s", got, view)
	}
	must(t, b.console, `result: commit: .*the next boot starts the layer empty`)

	b = sc.boot("v1", "view,layer")
	sc.wantBooted(b, "root", "committed")
	if got := find1(t, b, reView); got != view {
		t.Errorf("boot 3: view %s, want %s", got, view)
	}
	if got := find1(t, b, reLayer); got != "" {
		t.Errorf("boot 3: the persistent layer still holds %q after the commit", got)
	}
	must(t, b.console, `the layer starts empty \(the old one is kept as its -bak\)`)
}

// TestBtrfsPersistNotCommitted: case e: persist's trial rebooted without a
// commit: the old root boots, the failure is recorded, and the persistent
// layer is untouched.
func TestBtrfsPersistNotCommitted(t *testing.T) {
	sc := persistScenario(t)
	b := sc.boot("v1", "tune,view,persist,layer")
	view, layer := find1(t, b, reView), find1(t, b, reLayer)
	if layer == "" {
		t.Fatalf("boot 1: nothing in the persistent layer after tune")
	}
	b = sc.boot("v1", "")
	sc.wantBooted(b, "root.trying-0", "trying")
	b = sc.boot("v1", "view,layer,lowerview,update-shadow")
	sc.wantBooted(b, "root", "committed")
	sc.wantFailed(b, "root.trying-0")
	// The layer still holds /etc/tuned: an update that writes it is told
	// that the layer hides its change.
	must(t, b.console, `result: update-shadow: warning: the persistent layer .* hides 1 files this update changed`)
	must(t, b.console, `result: update-shadow:   /etc/tuned`)
	must(t, b.console, `result: update-shadow rc=0`)
	if got := find1(t, b, reLayer); got != layer {
		t.Errorf("boot 3: the persistent layer holds %q, want it untouched: %q", got, layer)
	}
	if got := find1(t, b, reView); got != view {
		t.Errorf("boot 3: view %s, want %s as before", got, view)
	}
	if got := find1(t, b, reLowerView); got == view {
		t.Errorf("boot 3: the committed root has the persisted changes although nothing was committed")
	}
}

// TestBtrfsCrashApply: apply on the btrfs store cut before its stage rename
// (N = 0: the unpacked subvolume is sealed, not staged) leaves the entries
// as they were and a .stage-* leftover that gc removes; cut right after it
// (N = 1), the next boot is the trial.
func TestBtrfsCrashApply(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	sc := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, map[string]string{"v2": v2}), args: btrfsArgs}
	b := sc.crash("v1", "crash:apply:0:v2")
	sc.wantEntries(b, ".lock root")

	b = sc.crash("v1", "gc,crash:apply:1:v2")
	sc.wantBooted(b, "root", "committed")
	if !regexp.MustCompile(`^\.lock (\.stage-\S+ )+root$`).MatchString(b.entries) {
		t.Errorf("boot %d: after the crash before staging the store holds %q, want .lock, .stage-* leftovers and root", b.n, b.entries)
	}
	must(t, b.console, `result: gc: removed \.stage-`)
	must(t, b.console, `result: after-gc: entries \.lock root \n`)

	b = sc.boot("v2", "")
	sc.wantBooted(b, "root.trying-0", "trying")
	sc.wantEntries(b, ".lock root root.trying-0")
}

// TestBtrfsCrashRollback: rollback after a commit is one RENAME_EXCHANGE of
// two read-only subvolumes: cut before it, v2 boots; after it, v1.
func TestBtrfsCrashRollback(t *testing.T) {
	s := newSession(t)
	v1, v2 := crashImages(t, s.a)
	sc := &storeScenario{t: t, s: s, d: btrfsStoreDisk(t, s, v1, map[string]string{"v2": v2}), args: btrfsArgs}
	sc.boot("v1", "apply:v2")
	sc.boot("v2", "commit")

	b := sc.crash("v2", "crash:rollback:0")
	sc.wantBooted(b, "root", "committed")
	sc.wantEntries(b, ".lock root root.prev")

	b = sc.crash("v2", "crash:rollback:1")
	sc.wantBooted(b, "root", "committed")

	b = sc.boot("v1", "")
	sc.wantBooted(b, "root", "committed")
	sc.wantEntries(b, ".lock root root.prev")
}
