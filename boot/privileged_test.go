package boot_test

// Privileged tests of the store-mode PID-1 path: an ext4 store holding
// squashfs root images is "booted" as PID 1 of its own PID and mount
// namespace (internal/testroot), and each image's /sbin/init reports which
// image runs and what the store holds. Nothing touches the host's mounts.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

const imageInit = `#!/bin/sh
echo "INIT-START"
echo "IMAGE=$(cat /etc/version)"
echo "ROOTFS=$(awk '$2=="/"{print $3}' /proc/mounts)"
echo "ROBASE-FS=$(awk '$2=="/overlay/robase"{print $3}' /proc/mounts)"
echo "STORE=$(awk '$2=="/overlay/store"{print $3" "substr($4,1,2)}' /proc/mounts)"
echo "ENTRIES=$(ls /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ')"
echo "BOOTCOUNT=$(ls /overlay/store/roots | grep '^boots-')"
if [ -n "$ACTION" ]; then sh -c "$ACTION"; echo "ACTION-RC=$?"; fi
# An orderly end, as a real init shuts down: SIGTERM to every process (the
# boot budget's keeper marks the boot good then) and a moment to finish.
kill -TERM -1 2>/dev/null
i=0
while [ $i -lt 30 ] && cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -q '^overlayupd-keepe[r]$'; do sleep 0.1; i=$((i+1)); done
echo "INIT-END"
`

// image makes a squashfs root image whose /etc/version is version.
func image(t *testing.T, version, out string, files map[string]string) string {
	t.Helper()
	all := map[string]string{"sbin/init": imageInit, "etc/version": version + "\n"}
	for k, v := range files {
		all[k] = v
	}
	return testroot.Squashfs(t, testroot.Tree(t, all), out)
}

// store makes an ext4 store whose roots/ holds the given images (name ->
// image file) and files.
func store(t *testing.T, roots map[string]string, files map[string]string, extra ...testroot.Applier) string {
	t.Helper()
	all := map[string]string{"overlayupd-store": "overlayupd store v1\n", "roots/": ""}
	for k, v := range files {
		all[k] = v
	}
	tree := testroot.Tree(t, all)
	for name, img := range roots {
		b, err := os.ReadFile(img)
		testroot.Must(t, err)
		testroot.Must(t, os.WriteFile(filepath.Join(tree, "roots", name), b, 0o644))
	}
	testroot.Apply(t, tree, extra...)
	return testroot.Ext4(t, tree, "96M")
}

type bootWant struct {
	env  []string
	want map[string]string
	has  []string // substrings of the console log
}

func bootAll(t *testing.T, img string, boots []bootWant) {
	t.Helper()
	for i, b := range boots {
		got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay", b.env...)
		for k, v := range b.want {
			if got[k] != v {
				t.Errorf("boot %d: %s=%q, want %q", i+1, k, got[k], v)
			}
		}
		for _, s := range b.has {
			if !strings.Contains(log, s) {
				t.Errorf("boot %d: console lacks %q", i+1, s)
			}
		}
		if t.Failed() {
			t.Fatalf("boot %d console:\n%s", i+1, log)
		}
	}
}

func TestStoreTrialBootsOnceThenFallsBack(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1, v2 := image(t, "v1", "", nil), image(t, "v2", "", nil)
	img := store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": v2}, nil)
	bootAll(t, img, []bootWant{
		{want: map[string]string{"IMAGE": "v2", "ROOTFS": "overlay", "ROBASE-FS": "squashfs", "STORE": "ext4 ro",
			"ENTRIES": "root.sqsh root.trying-0.sqsh "}},
		// No commit: the trial used its only boot.
		{want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason root.failed.sqsh root.sqsh "}},
		{want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason root.failed.sqsh root.sqsh "}},
	})
}

func TestStoreBrokenImagesFallBack(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1 := image(t, "v1", "", nil)
	garbage := filepath.Join(t.TempDir(), "garbage")
	testroot.Must(t, os.WriteFile(garbage, []byte(strings.Repeat("not a squashfs image ", 1000)), 0o644))
	t.Run("trial does not mount", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": v1, "root.try-2.sqsh": garbage}, nil)
		bootAll(t, img, []bootWant{{
			want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason root.failed.sqsh root.sqsh "},
			has:  []string{"root.trying-1.sqsh does not mount"}}})
	})
	t.Run("trial does not mount, persistent layer", func(t *testing.T) {
		// The persistent plan's undo makes the store read-only again; the
		// failure must still be recorded, or the bad trial boots again.
		img := store(t, map[string]string{"root.sqsh": v1, "root.try-2.sqsh": garbage}, map[string]string{"overlay-rw-layer/": ""})
		bootAll(t, img, []bootWant{
			// The layer the trial got goes with it (layer.failed).
			{want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason layer.base layer.failed root.failed.sqsh root.sqsh "}},
			{want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason layer.base layer.failed root.failed.sqsh root.sqsh "}}})
	})
	t.Run("trial does not mount, no union filesystem", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": garbage}, nil)
		got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay overlayupd.fs=unionfs")
		if got["IMAGE"] != "v1" || got["ROOTFS"] != "squashfs" || !strings.Contains(log, "root.trying-0.sqsh does not boot read-only either") {
			t.Errorf("IMAGE=%q ROOTFS=%q, want v1 read-only after the trial failed:\n%s", got["IMAGE"], got["ROOTFS"], log)
		}
	})
	t.Run("hostile entries: a FIFO root, a linked trial", func(t *testing.T) {
		// A FIFO under the committed root's name must not hang the boot,
		// and a trial that is a link (here to another image in the store)
		// must not boot: neither is an entry. root.prev boots.
		v2 := image(t, "v2", "", nil)
		img := store(t, map[string]string{"root.prev.sqsh": v1}, map[string]string{"elsewhere/": ""},
			testroot.Fifo("roots/root.sqsh", 0o644),
			testroot.CopyFile(v2, "elsewhere/v2.sqsh", 0o644),
			testroot.Symlink("/elsewhere/v2.sqsh", "roots/root.try-1.sqsh"))
		bootAll(t, img, []bootWant{{want: map[string]string{"IMAGE": "v1"},
			has: []string{"moved root.sqsh aside to .hostile-root.sqsh: not an image file", "moved root.try-1.sqsh aside to .hostile-root.try-1.sqsh: not an image file"}}})
	})
	// A root whose init cannot run is found before the pivot, and the next
	// root boots in the same boot (an exec of it would panic the kernel, and
	// the reboot would try the same root again).
	emptyInit := testroot.Squashfs(t, testroot.Tree(t, map[string]string{"sbin/init": "", "etc/version": "v0\n"}), "")
	noShell := testroot.Squashfs(t, testroot.NewTree(t, testroot.Dir("sbin", 0o755),
		testroot.File("sbin/init", "#!/bin/sh\necho never\n", 0o755)), "")
	t.Run("committed root's init is zero bytes", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": emptyInit, "root.prev.sqsh": v1}, nil)
		bootAll(t, img, []bootWant{{want: map[string]string{"IMAGE": "v1"},
			has: []string{"root.sqsh cannot boot", "/sbin/init is empty (0 bytes)"}}})
	})
	t.Run("trial's init is a script without its shell", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": noShell}, nil)
		bootAll(t, img, []bootWant{{
			want: map[string]string{"IMAGE": "v1", "ENTRIES": "boot.reason failed.reason root.failed.sqsh root.sqsh "},
			has:  []string{"/bin/sh: no such file or directory"}}})
	})
	t.Run("committed root does not mount", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": garbage, "root.prev.sqsh": v1}, nil)
		bootAll(t, img, []bootWant{{want: map[string]string{"IMAGE": "v1"}, has: []string{"root.sqsh does not mount"}}})
	})
}

// TestStorePersistentLayer: what a committed root writes stays; what a
// trial that never commits writes goes with the trial (trampoline/layer.go).
func TestStorePersistentLayer(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1, v2 := image(t, "v1", "", nil), image(t, "v2", "", nil)
	img := store(t, map[string]string{"root.sqsh": v1, "root.prev.sqsh": v2}, map[string]string{"overlay-rw-layer/": ""})
	write := func(what string) []string { return []string{"ACTION=echo " + what + " > /etc/data; cat /etc/data"} }
	read := []string{"ACTION=echo DATA=$(cat /etc/data)"}
	stage := []string{"ACTION=cp /overlay/store/roots/root.prev.sqsh /tmp/v2 && overlayupd apply /tmp/v2"}
	bootAll(t, img, []bootWant{
		{env: write("kept"), want: map[string]string{"IMAGE": "v1", "ROBASE-FS": "squashfs", "ACTION-RC": "0"}},
		{env: read, want: map[string]string{"IMAGE": "v1", "DATA": "kept"}},
		{env: stage, want: map[string]string{"IMAGE": "v1", "ACTION-RC": "0"}},
		{env: write("trial"), want: map[string]string{"IMAGE": "v2", "ACTION-RC": "0"}},
		{env: read, want: map[string]string{"IMAGE": "v1", "DATA": "kept"}},
	})
}

func TestStoreDisabledOverlayBootsImageReadOnly(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	img := store(t, map[string]string{"root.sqsh": image(t, "v1", "", nil)}, map[string]string{"overlay/disable": ""})
	bootAll(t, img, []bootWant{{
		env:  []string{"ACTION=echo x > /etc/x 2>/dev/null && echo W=ok || echo W=refused"},
		want: map[string]string{"IMAGE": "v1", "ROOTFS": "overlay", "ROBASE-FS": "squashfs", "STORE": "ext4 ro", "W": "refused"}}})
}

// The whole job, as a device does it: apply inside the running system,
// the trial boot, commit, rollback, and a trial that never commits, with a
// persistent writable layer on the store that survives it all.
func TestStoreApplyCommitRollback(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1 := image(t, "v1", "", nil)
	tree := map[string]string{"overlayupd-store": "overlayupd store v1\n", "roots/": "", "updates/": "", "overlay-rw-layer/": ""}
	storeTree := testroot.Tree(t, tree)
	b, err := os.ReadFile(v1)
	testroot.Must(t, err)
	testroot.Must(t, os.WriteFile(filepath.Join(storeTree, "roots/root.sqsh"), b, 0o644))
	image(t, "v2", filepath.Join(storeTree, "updates/v2.sqsh"), nil)
	image(t, "v3", filepath.Join(storeTree, "updates/v3.sqsh"), nil)
	img := testroot.Ext4(t, storeTree, "128M")

	act := func(cmd string) []string { return []string{"ACTION=" + cmd} }
	status := "overlayupd status --json | tr -d ' \\n' | sed 's/^/STATUS=/'; echo"
	bootAll(t, img, []bootWant{
		{env: act("echo data > /etc/data && overlayupd apply /overlay/store/updates/v2.sqsh"),
			want: map[string]string{"IMAGE": "v1", "ACTION-RC": "0", "STORE": "ext4 ro"},
			has:  []string{"staged root.try-1.sqsh"}},
		{env: act("cat /etc/data && overlayupd commit"),
			want: map[string]string{"IMAGE": "v2", "ACTION-RC": "0", "ENTRIES": "layer.base layer.trial root.sqsh root.trying-0.sqsh shadow.report "},
			has:  []string{"committed root.sqsh", "\ndata\n"}},
		{env: act("overlayupd rollback"),
			want: map[string]string{"IMAGE": "v2", "ACTION-RC": "0", "ENTRIES": "layer.base root.prev.sqsh root.sqsh shadow.report "}},
		{env: act("overlayupd apply /overlay/store/updates/v3.sqsh"),
			want: map[string]string{"IMAGE": "v1", "ACTION-RC": "0"}},
		// The trial boots and is not committed: commit without a trial is refused later.
		{want: map[string]string{"IMAGE": "v3"}},
		{env: act(status + "; overlayupd commit; cat /etc/data"),
			want: map[string]string{"IMAGE": "v1", "ACTION-RC": "0"},
			has:  []string{`"role":"failed"`, "no trial in progress", "\ndata\n"}},
	})
}

// Without any union filesystem the image still boots, read-only.
func TestStoreNoUnionFSBootsImageReadOnly(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	// The image has a directory for a mount nested in another (/run/lock in
	// /run), as debootstrap images have /dev/pts: only the outer one moves.
	img := store(t, map[string]string{"root.sqsh": image(t, "v1", "", map[string]string{"run/lock/": ""})}, nil)
	got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay overlayupd.fs=unionfs",
		"ACTION=echo x > /etc/x 2>/dev/null && echo W=ok || echo W=refused; echo PROC=$(ls /proc/self/ >/dev/null && echo yes)")
	for k, v := range map[string]string{"IMAGE": "v1", "ROOTFS": "squashfs", "W": "refused", "PROC": "yes"} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(log, "booting root.sqsh read-only without overlay") {
		t.Errorf("console lacks the fallback line")
	}
	// The store is out of the running system's reach: the boot budget's
	// count is marked good by PID 1 itself, or root and root.prev would
	// swap every few boots over a layer fault.
	if !strings.Contains(log, "boot budget: this boot is marked good: the root mounted") {
		t.Errorf("the boot without overlay was not marked good")
	}
	if t.Failed() {
		t.Log(log)
	}
	// On the disk: the next boot (with its overlay, and no mark of its own
	// before init) counts from 0, not on from that boot's count.
	got, _ = testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay overlayupd.good_after=1h")
	if got["IMAGE"] != "v1" || got["BOOTCOUNT"] != "boots-1" {
		t.Errorf("next boot: IMAGE=%q BOOTCOUNT=%q, want v1 and boots-1 (the boot without overlay marked good)", got["IMAGE"], got["BOOTCOUNT"])
	}
}

// When nothing at all boots (every root bad, no init and no shell on the
// store), PID 1 says so on the console every 10 s instead of rebooting in a
// loop that would hide it.
func TestNothingBootsSaysSoRepeatedly(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	empty := testroot.Squashfs(t, testroot.Tree(t, map[string]string{"sbin/init": "", "etc/version": "v0\n"}), "")
	tree := testroot.NewTree(t, testroot.Dir("roots", 0o755), testroot.Dir("sbin", 0o755), testroot.Dir("proc", 0o755),
		testroot.Dir("run", 0o755), testroot.Dir("overlay", 0o755), testroot.Dir("dev", 0o755), testroot.Dir("sys", 0o755),
		testroot.File("overlayupd-store", "overlayupd store v1\n", 0o644),
		testroot.InitOverlay("sbin/init-overlay"), testroot.CopyFile(empty, "roots/root.sqsh", 0o644))
	img := testroot.Ext4(t, tree, "64M")
	log := testroot.BootFor(t, img, "root=/dev/vda ro init=/sbin/init-overlay", 25*time.Second)
	t.Logf("console:\n%s", log)
	if n := strings.Count(log, "nothing can boot:"); n < 2 {
		t.Errorf("the message came %d times in 25 s, want it every 10 s:\n%s", n, log)
	}
	if strings.Contains(log, "rebooting") {
		t.Errorf("PID 1 rebooted, hiding the message:\n%s", log)
	}
	if !strings.Contains(log, "root.sqsh cannot boot") || !strings.Contains(log, "empty (0 bytes)") {
		t.Errorf("the console does not say why:\n%s", log)
	}
}

// TestBootBudget: a committed root that keeps failing (its init exits at
// once) falls back to root.prev after overlayupd.boot_budget boots, in one
// exchange; the root that now boots is marked good by mark-good.
func TestBootBudget(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1 := image(t, "v1", "", nil)
	bad := testroot.Squashfs(t, testroot.Tree(t, map[string]string{
		"sbin/init":   "#!/bin/sh\necho IMAGE=v2\necho \"ENTRIES=$(ls /overlay/store/roots | tr '\\n' ' ')\"\nexit 1\n",
		"etc/version": "v2\n"}), "")
	img := store(t, map[string]string{"root.sqsh": bad, "root.prev.sqsh": v1}, nil)
	const cmdline = "root=/dev/vda ro init=/sbin/init-overlay overlayupd.boot_budget=2"
	report := func(log string) map[string]string {
		out := map[string]string{}
		for _, line := range strings.Split(log, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && k != "" && strings.ToUpper(k) == k && !strings.Contains(k, " ") {
				out[k] = v
			}
		}
		return out
	}
	// The bad image's init lists every entry; v1's (imageInit) lists them
	// without the count and gives the count as BOOTCOUNT.
	for i, want := range []struct{ image, entries, count string }{
		{"v2", "boots-1 root.prev.sqsh root.sqsh ", ""},
		{"v2", "boots-2 root.prev.sqsh root.sqsh ", ""},
		{"v1", "boot.reason root.prev.sqsh root.sqsh ", "boots-1"},
	} {
		log := testroot.BootFor(t, img, cmdline, 60*time.Second)
		got := report(log)
		if got["IMAGE"] != want.image || got["ENTRIES"] != want.entries || got["BOOTCOUNT"] != want.count {
			t.Fatalf("boot %d: IMAGE=%q ENTRIES=%q BOOTCOUNT=%q, want %q %q %q:\n%s", i+1, got["IMAGE"], got["ENTRIES"], got["BOOTCOUNT"],
				want.image, want.entries, want.count, log)
		}
		if i == 2 && !strings.Contains(log, "did not boot well 2 times in a row") {
			t.Errorf("boot 3: the console does not say why:\n%s", log)
		}
	}
	// The previous root, now committed, is healthy: mark-good resets it.
	got, log := testroot.Boot(t, img, cmdline, "ACTION=overlayupd mark-good && ls /overlay/store/roots | tr '\\n' ' ' | sed 's/^/AFTER=/'; echo")
	if got["IMAGE"] != "v1" || got["AFTER"] != "boot.reason boots-0 root.prev.sqsh root.sqsh " {
		t.Errorf("boot 4: IMAGE=%q AFTER=%q, want v1 marked good:\n%s", got["IMAGE"], got["AFTER"], log)
	}
	// A committed boot is marked good: at once with good_after=0 (by the
	// trampoline, before init; no keeper) ...
	list := "ls /overlay/store/roots | tr '\\n' ' ' | sed 's/^/AFTER=/'; echo"
	got, log = testroot.Boot(t, img, cmdline+" overlayupd.good_after=0", "ACTION=sleep 2; "+list)
	if got["IMAGE"] != "v1" || got["AFTER"] != "boot.reason boots-0 root.prev.sqsh root.sqsh " {
		t.Errorf("boot 5 (good_after=0): IMAGE=%q AFTER=%q, want v1 marked good by the keeper:\n%s", got["IMAGE"], got["AFTER"], log)
	}
	// ... and at an orderly shutdown (init's SIGTERM) before good_after, once
	// the boot has run for keeper.OrderlyFloor (30 s of good_after=1h, 5 s
	// of good_after=10s); one within seconds of the boot is no mark (a root
	// whose init reboots at once did not boot well).
	term := "for p in /proc/[0-9]*; do [ \"$(head -c 17 $p/cmdline 2>/dev/null)\" = overlayupd-keeper ] && kill -TERM ${p#/proc/}; done; sleep 2; "
	before := "ls /overlay/store/roots | tr '\\n' ' ' | sed 's/^/BEFORE=/'; echo; "
	got, log = testroot.Boot(t, img, cmdline+" overlayupd.good_after=1h", "ACTION="+before+term+list)
	if got["BEFORE"] != "boot.reason boots-1 root.prev.sqsh root.sqsh " || got["AFTER"] != "boot.reason boots-1 root.prev.sqsh root.sqsh " ||
		!strings.Contains(log, "before the 30s an orderly shutdown needs to mark this boot good") {
		t.Errorf("boot 6 (SIGTERM at once): BEFORE=%q AFTER=%q, want no mark (the count stays):\n%s", got["BEFORE"], got["AFTER"], log)
	}
	got, log = testroot.Boot(t, img, cmdline+" overlayupd.good_after=10s", "ACTION="+before+"sleep 6; "+term+list)
	if got["BEFORE"] != "boot.reason boots-2 root.prev.sqsh root.sqsh " || got["AFTER"] != "boot.reason boots-0 root.prev.sqsh root.sqsh " {
		t.Errorf("boot 6b (SIGTERM after 6 s): BEFORE=%q AFTER=%q, want the count marked good at the signal:\n%s", got["BEFORE"], got["AFTER"], log)
	}
	// Without the budget, nothing is counted and the bad root would boot forever.
	got, _ = testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay overlayupd.boot_budget=0")
	if got["IMAGE"] != "v1" || got["BOOTCOUNT"] != "boots-0" {
		t.Errorf("boot 7 (budget off): IMAGE=%q BOOTCOUNT=%q, want v1 and no count", got["IMAGE"], got["BOOTCOUNT"])
	}
	// Without the key the budget is on (DefaultBootBudget): the boot counts itself.
	got, _ = testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay overlayupd.good_after=1h")
	if got["IMAGE"] != "v1" || got["BOOTCOUNT"] != "boots-1" {
		t.Errorf("boot 8 (default budget): IMAGE=%q BOOTCOUNT=%q, want v1 counted (boots-1)", got["IMAGE"], got["BOOTCOUNT"])
	}
}

// TestCommittedInitExecFailsReboots: a committed root whose init passes the
// check before the pivot (an ELF header) but cannot be executed after it (a
// truncated binary here; in the field a damaged or missing loader, ENOEXEC
// or EIO), and with no shell to fall back to. The boot has counted against
// the root's budget and root.prev exists, so the next boots do make
// progress: PID 1 must reboot, not say "nothing can boot" forever. A board
// that halts waits for a hand on its power switch, budget times over,
// where the budget would have brought root.prev back on its own.
func TestCommittedInitExecFailsReboots(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1 := image(t, "v1", "", nil)
	bad := testroot.Squashfs(t, testroot.NewTree(t, testroot.Dir("sbin", 0o755), testroot.Dir("etc", 0o755),
		testroot.Dir("proc", 0o755), testroot.Dir("sys", 0o755), testroot.Dir("dev", 0o755), testroot.Dir("run", 0o755),
		testroot.Dir("tmp", 0o755), testroot.Dir("overlay", 0o755),
		testroot.File("sbin/init", testroot.ELFStub(), 0o755), testroot.File("etc/version", "v2\n", 0o644)), "")
	img := store(t, map[string]string{"root.sqsh": bad, "root.prev.sqsh": v1}, nil)
	const cmdline = "root=/dev/vda ro init=/sbin/init-overlay overlayupd.boot_budget=1"
	log := testroot.BootFor(t, img, cmdline, 45*time.Second)
	if !strings.Contains(log, "rebooting") || strings.Contains(log, "nothing can boot") {
		t.Fatalf("boot 1: the committed root's init cannot be executed, root.prev is there and the boot counted: want a reboot, not a halt:\n%s", log)
	}
	got, log := testroot.Boot(t, img, cmdline)
	if got["IMAGE"] != "v1" {
		t.Errorf("boot 2: IMAGE=%q, want v1 (root.prev, after the budget):\n%s", got["IMAGE"], log)
	}
}

// TestStoreStatusNextBootDisabled: in store mode the next boot reads the
// disable file (and the get-mode script) on the store, before any image is
// mounted: status reports the store's, not the booted image's. An image
// built from a classic root that was disabled carries /overlay/disable,
// which no store boot reads.
func TestStoreStatusNextBootDisabled(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	show := `ACTION=st="$(overlayupd status --json)"; ` +
		`echo "$st" | grep -q '"enabled_next_boot": true' && echo NEXT=enabled || echo NEXT=disabled; ` +
		`echo "BY=$(echo "$st" | sed -n 's/.*"disabled_by": "\(.*\)".*/\1/p')"; ` +
		`echo "FILE=$(echo "$st" | sed -n 's/.*"disable_file": "\(.*\)".*/\1/p')"`
	t.Run("store disables", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": image(t, "v1", "", nil)}, map[string]string{"overlay/disable": ""})
		bootAll(t, img, []bootWant{{env: []string{show}, want: map[string]string{
			"NEXT": "disabled", "BY": "/overlay/store/overlay/disable", "FILE": "/overlay/store/overlay/disable"}}})
	})
	t.Run("image's file is not read", func(t *testing.T) {
		img := store(t, map[string]string{"root.sqsh": image(t, "v1", "", map[string]string{"overlay/disable": ""})}, nil)
		bootAll(t, img, []bootWant{{env: []string{show}, want: map[string]string{
			"ROOTFS": "overlay", "NEXT": "enabled", "BY": "", "FILE": "/overlay/store/overlay/disable"}}})
	})
}
