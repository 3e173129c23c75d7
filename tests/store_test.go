package tests

// Store-mode scenarios (issue 4, "VM tests, on a store disk"): the kernel
// mounts an ext4 store made by `overlayupd store init` as /, runs
// init=/sbin/init-overlay, and the trampoline boots a squashfs root image
// from /roots by the slot protocol. Every image is a full test root (busybox,
// overlayupd, the test /sbin/init) whose /etc/version names it; the update
// images lie in the store's /updates, so a step in the guest can
// `overlayupd apply /overlay/store/updates/vN.sqsh`.
//
// Each boot runs the "run" step: it prints which image runs, the store's
// entries, the persistent data file and `overlayupd status --json` (one
// line), then the actions named by act= on the kernel command line.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// storeLib is sourced by the run step of every store image.
const storeLib = `
# view digests the tree under $1 that a root's image defines: names and
# types, and the contents of the files.
view() {
	( cd "$1" && {
		find etc bin sbin usr test -xdev -type f -exec md5sum {} +
		find etc bin sbin usr test -xdev ! -type f | while read -r p; do
			if [ -L "$p" ]; then echo "l $p $(readlink "$p")"; else echo "o $p"; fi
		done
	} 2>/dev/null | sort | md5sum | cut -c1-32 )
}
arg() { for a in $(cat /proc/cmdline); do case $a in "$1"=*) echo "${a#*=}" ;; esac; done; }
show() {
	echo "result: image $(cat /etc/version)"
	echo "result: entries $(ls -A /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ')"
	echo "result: bootcount $(ls -A /overlay/store/roots | grep '^boots-' | tr '\n' ' ')"
	echo "result: data $(cat /var/data 2>/dev/null || echo none)"
	echo "result: status $(overlayupd status --json 2>&1 | tr -d '\n')"
}
`

// storeRun runs the actions in act= (comma-separated): write (the
// persistent data file), apply:vN[:TRIES], commit, rollback, status, crash
// (sysrq b after a sync: reboot without further syncing), hang (for a kill).
const storeRun = `
. /test/lib.sh
show
for a in $(arg act | tr , ' '); do
	set -- $(echo "$a" | tr : ' ')
	case $1 in
	write)
		echo "kept from $(cat /etc/version)" > /var/data && sync && echo "result: wrote data" ;;
	apply)
		overlayupd apply "/overlay/store/updates/$2.sqsh" ${3:+--tries $3} 2>&1 | sed 's/^/result: apply: /'
		echo "result: apply rc=$?" ;;
	commit)
		overlayupd commit 2>&1 | sed 's/^/result: commit: /'
		echo "result: commit rc=$?" ;;
	rollback)
		overlayupd rollback 2>&1 | sed 's/^/result: rollback: /'
		echo "result: rollback rc=$?" ;;
	status)
		echo "result: after: entries $(ls -A /overlay/store/roots | grep -v '^boots-' | tr '\n' ' ')"
		overlayupd status 2>&1 | sed -n '/^store:/,$p' | sed 's/^/result: after: status: /' ;;
	crash)
		sync; echo "result: power cut"; echo b > /proc/sysrq-trigger; sleep 5; echo "result: survived the power cut" ;;
	hang)
		echo "result: hanging"; sleep 1000 ;;
	sleep)
		sleep "$2"; echo "result: slept $2" ;;
	cutmark)
		echo "result: cut-here" ;;
	commit-force)
		overlayupd commit --force 2>&1 | sed 's/^/result: commit: /'
		echo "result: commit rc=$?" ;;
	update-ver)
		overlayupd update -- sh -c "echo $2 > /etc/version" 2>&1 | sed 's/^/result: update: /'
		echo "result: update rc=$?" ;;
	update-false)
		overlayupd update -- false 2>&1 | sed 's/^/result: update-false: /'
		echo "result: update-false rc=$?" ;;
	update-fill)
		overlayupd update -- sh -c 'dd if=/dev/zero of=/fill bs=1M 2>&1 | tail -1; exit 1' 2>&1 | sed 's/^/result: update-fill: /'
		echo "result: update-fill rc=$?" ;;
	gc)
		overlayupd gc 2>&1 | sed 's/^/result: gc: /'
		echo "result: gc rc=$?" ;;
	unlock)
		overlayupd unlock 2>&1 | sed 's/^/result: unlock: /'
		echo "result: unlock rc=$?" ;;
	df)
		sync; echo "result: df $(df -k /overlay/store | awk 'NR==2 {print $4}')" ;;
	tune)
		echo tuned > /etc/tuned && rm /etc/doomed && mkdir -p /etc/tuned.d && echo on > /etc/tuned.d/knob && echo "result: tuned" ;;
	view)
		echo "result: view $(view /)" ;;
	lowerview)
		echo "result: lowerview $(view /overlay/robase)" ;;
	update-shadow)
		overlayupd update -- sh -c 'echo from-update > /etc/tuned' 2>&1 | sed 's/^/result: update-shadow: /'
		echo "result: update-shadow rc=$?" ;;
	persist)
		overlayupd persist 2>&1 | sed 's/^/result: persist: /'
		echo "result: persist rc=$?" ;;
	layer)
		echo "result: layer $(cd /overlay/rwdata/data && find etc 2>/dev/null | sort | tr '\n' ' ')" ;;
	applyd)
		overlayupd apply "/overlay/store/updates/$2.sqsh" --deadline "$3" 2>&1 | sed 's/^/result: apply: /'
		echo "result: apply rc=$?" ;;
	put)
		mkdir -p /var/t && echo "$2 from $(cat /etc/version)" > /var/t/$2 && sync && echo "result: put $2" ;;
	get)
		echo "result: get $2 $(cat /var/t/$2 2>/dev/null || echo none)" ;;
	many)
		# $2 files in /var/many/a, a directory the persistent layer has
		# already: the fold moves them one by one.
		mkdir -p /var/many/a; i=0
		while [ $i -lt $2 ]; do echo "file $i" > /var/many/a/f$i; i=$((i+1)); done
		sync; echo "result: many $2" ;;
	seedmany)
		mkdir -p /var/many/a && echo seed > /var/many/a/seed && sync && echo "result: seeded" ;;
	count)
		echo "result: count $(ls /var/many/a | grep -c '^f') $(cd /var/many/a && cat $(ls | grep '^f' | sort) | md5sum | cut -c1-32)" ;;
	editconf)
		echo mine > /etc/conf && sync && echo "result: edited conf" ;;
	conf)
		echo "result: conf $(cat /etc/conf)"
		echo "result: aside $(cat /overlay/rwdata/shadowed/1/etc/conf 2>/dev/null || echo none)" ;;
	crashcommit)
		echo "result: crash-run: OVERLAYUPD_CRASH_AFTER_OP=$2 overlayupd commit"
		sync; OVERLAYUPD_CRASH_AFTER_OP=$2 overlayupd commit
		echo "result: crash-returned rc=$?" ;;
	wdcheck)
		# Who holds a watchdog device open, and is a keeper running?
		echo "result: wdfds $(ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c '/dev/watchdog')"
		# (watchdog keepers: a committed boot's good-mark keeper holds none)
		echo "result: keepers $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -o 'overlayupd-keepe[r] --wdt-fd' | wc -l)" ;;
	esac
done
`

// pipefail is not in busybox sh's subshell by default: the rc lines above
// report sed's status unless the step enables it.
const storeRunPrefix = "set -o pipefail 2>/dev/null\n"

// storeImage builds a squashfs root image whose /etc/version is version;
// setup may change the tree (e.g. a broken /sbin/init).
func storeImage(t *testing.T, a *assets, version string, setup func(r *rootTree)) string {
	t.Helper()
	r := newRootTree(t, a)
	r.write("etc/version", version+"\n", 0o644)
	r.write("test/lib.sh", storeLib, 0o644)
	r.step("run", storeRunPrefix+storeRun)
	if setup != nil {
		setup(r)
	}
	return r.squashfs()
}

// storeDisk makes an ext4 store disk: `overlayupd store init` with v1 as
// the committed root (on the host, in a temp directory; nothing mounted),
// the update images in /updates, a persistent rw layer (/overlay-rw-layer)
// if persistent, then mkfs.ext4 -d.
func storeDisk(t *testing.T, s *session, v1 string, persistent bool, updates map[string]string) *disk {
	t.Helper()
	top := testroot.NewTree(t)
	if err := run("", s.a.bin, append([]string{"store", "init", top, "--image", v1}, s.a.trampolineArgs()...)...); err != nil {
		t.Fatalf("overlayupd store init: %v", err)
	}
	add := []testroot.Applier{testroot.Dir("updates", 0o755)}
	for name, img := range updates {
		add = append(add, testroot.CopyFile(img, "updates/"+name+".sqsh", 0o644))
	}
	if persistent {
		add = append(add, testroot.Dir("overlay-rw-layer", 0o755))
	}
	testroot.Apply(t, top, add...)
	return &disk{t: t, path: testroot.Ext4(t, top, "256M", "-L", "store"), fstype: "ext4"}
}

// storeStatus is the part of `overlayupd status --json` the scenarios check.
type storeStatus struct {
	RWLayer string `json:"rw_layer"`
	Store   *struct {
		Booted  string `json:"booted"`
		Entries []struct {
			Name   string      `json:"name"`
			Role   string      `json:"role"`
			Booted bool        `json:"booted"`
			MTime  string      `json:"mtime"` // with the size, the entry's identity across renames
			Size   int64       `json:"size"`
			Reason *bootReason `json:"reason"`
		} `json:"entries"`
		NextBoot struct {
			Entry     string `json:"entry"`
			Role      string `json:"role"`
			Trial     bool   `json:"trial"`
			TriesLeft int    `json:"tries_left"`
			Summary   string `json:"summary"`
		} `json:"next_boot"`
		LastBootReason *bootReason `json:"last_boot_reason"`
		Layer          *struct {
			Trial       bool `json:"trial_layer"`
			FoldPending bool `json:"fold_pending"`
			Failed      bool `json:"failed_layer"`
			Shadows     *struct {
				Root   string `json:"root"`
				Policy string `json:"policy"`
				Trial  bool   `json:"trial"`
				Files  []struct {
					Path   string `json:"path"`
					Change string `json:"change"`
					Action string `json:"action"`
					Aside  string `json:"aside"`
				} `json:"files"`
			} `json:"shadows"`
		} `json:"layer"`
	} `json:"store"`
}

type bootReason struct {
	Entry string `json:"entry"`
	Why   string `json:"why"`
}

// bootedID identifies the entry this system booted across the renames of
// the slot protocol: its image file's mtime and size ("" when unknown). Two
// entries can hold the same image version (a walk that applies v3 over a
// committed v3), so the version alone cannot tell them apart.
func (st *storeStatus) bootedID() string {
	if st == nil || st.Store == nil {
		return ""
	}
	for _, e := range st.Store.Entries {
		if e.Name == st.Store.Booted && e.MTime != "" {
			return fmt.Sprintf("%s/%d", e.MTime, e.Size)
		}
	}
	return ""
}

// booted returns the entry status says this system booted, and its role.
func (st *storeStatus) booted() (name, role string) {
	if st == nil || st.Store == nil {
		return "", ""
	}
	for _, e := range st.Store.Entries {
		if e.Name == st.Store.Booted {
			return e.Name, e.Role
		}
	}
	return st.Store.Booted, ""
}

// entry returns the entry named name, or nil.
func (st *storeStatus) entry(name string) (role string, reason *bootReason, ok bool) {
	if st == nil || st.Store == nil {
		return "", nil, false
	}
	for _, e := range st.Store.Entries {
		if e.Name == name {
			return e.Role, e.Reason, true
		}
	}
	return "", nil, false
}

// storeBoot is what one boot of a store disk showed.
type storeBoot struct {
	n       int // boot number on this disk, for messages
	console string
	image   string // /etc/version of the image that ran
	entries string // ls of /overlay/store/roots at the start of the step
	data    string // the persistent data file, "none" if absent
	status  *storeStatus
}

var (
	reImage   = regexp.MustCompile(`(?m)^result: image (\S+)$`)
	reEntries = regexp.MustCompile(`(?m)^result: entries (.*?) ?$`)
	reData    = regexp.MustCompile(`(?m)^result: data (.*)$`)
	reStatus  = regexp.MustCompile(`(?m)^result: status (.*)$`)
)

// parseStoreBoot reads the run step's first lines from a console.
func parseStoreBoot(t *testing.T, n int, console string) *storeBoot {
	t.Helper()
	b, err := readStoreBoot(n, console)
	if err != nil {
		t.Error(err)
	}
	return b
}

// readStoreBoot is parseStoreBoot for a boot whose status may not run (a
// damaged image): a status line that does not parse is returned as an
// error, with what else the console showed.
func readStoreBoot(n int, console string) (*storeBoot, error) {
	b := &storeBoot{n: n, console: console}
	if m := reImage.FindStringSubmatch(console); m != nil {
		b.image = m[1]
	}
	if m := reEntries.FindStringSubmatch(console); m != nil {
		b.entries = m[1]
	}
	if m := reData.FindStringSubmatch(console); m != nil {
		b.data = m[1]
	}
	if m := reStatus.FindStringSubmatch(console); m != nil {
		st := &storeStatus{}
		if err := json.Unmarshal([]byte(m[1]), st); err != nil {
			return b, fmt.Errorf("boot %d: status --json does not parse: %w\n%s", n, err, m[1])
		}
		b.status = st
	}
	return b, nil
}

// storeScenario boots one store disk again and again.
type storeScenario struct {
	t     *testing.T
	s     *session
	d     *disk
	boots int
	args  []string // more kernel parameters (a btrfs store's rootfstype, rootflags)
}

func (sc *storeScenario) opts(act string, args ...string) bootOpts {
	a := append(append([]string{"root=/dev/vda", "ro"}, sc.args...), args...)
	if act != "" {
		a = append(a, "act="+act)
	}
	return bootOpts{init: "/sbin/init-overlay", step: "run", args: a}
}

// boot boots the store disk with the run step doing act, waits for the
// power-off and checks that the image want ran and the step ended well.
func (sc *storeScenario) boot(want, act string) *storeBoot {
	t := sc.t
	t.Helper()
	sc.boots++
	out := sc.s.run(sc.d, sc.opts(act))
	b := parseStoreBoot(t, sc.boots, out)
	sc.wantImage(b, want)
	if !strings.Contains(out, "harness: step-done step=run rc=0") {
		t.Errorf("boot %d: the run step did not end with rc=0", sc.boots)
	}
	for _, cmd := range []string{"apply", "commit", "rollback"} {
		if m := regexp.MustCompile(`result: ` + cmd + ` rc=(\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
			t.Errorf("boot %d: overlayupd %s failed (rc=%s):\n%s", sc.boots, cmd, m[1],
				strings.Join(regexp.MustCompile(`(?m)^result: `+cmd+`: .*$`).FindAllString(out, -1), "\n"))
		}
	}
	return b
}

// start boots with act and waits until the image has printed its status:
// the caller then cuts the power or waits for a crash.
func (sc *storeScenario) start(want, act string) (*vm, *storeBoot) {
	t := sc.t
	t.Helper()
	sc.boots++
	v := sc.s.boot(sc.d, sc.opts(act))
	v.expect(`result: status .*\n`, bootTimeout)
	b := parseStoreBoot(t, sc.boots, v.console())
	sc.wantImage(b, want)
	return v, b
}

func (sc *storeScenario) wantImage(b *storeBoot, want string) {
	sc.t.Helper()
	if b.image != want {
		sc.t.Fatalf("boot %d: image %q ran, want %q; console tail:\n%s\n(logs in %s)",
			b.n, b.image, want, tail(b.console, 30), sc.s.logDir)
	}
}

// wantBooted checks the booted entry and its role in status --json.
func (sc *storeScenario) wantBooted(b *storeBoot, name, role string) {
	sc.t.Helper()
	if gn, gr := b.status.booted(); gn != name || gr != role {
		sc.t.Errorf("boot %d: status says booted %q (role %q), want %q (role %q)", b.n, gn, gr, name, role)
	}
}

// wantEntries checks the slot directory's listing (sorted, hidden files too).
func (sc *storeScenario) wantEntries(b *storeBoot, want string) {
	sc.t.Helper()
	if b.entries != want {
		sc.t.Errorf("boot %d: store holds %q, want %q", b.n, b.entries, want)
	}
}

// wantFailed checks that status records root.failed (root.failed.sqsh on a
// squashfs store) with a reason.
func (sc *storeScenario) wantFailed(b *storeBoot, trial string) {
	sc.t.Helper()
	failed := "root.failed.sqsh"
	if sc.d.fstype == "btrfs" {
		failed = "root.failed"
	}
	role, reason, ok := b.status.entry(failed)
	switch {
	case !ok:
		sc.t.Errorf("boot %d: status has no %s entry", b.n, failed)
	case role != "failed":
		sc.t.Errorf("boot %d: %s has role %q, want failed", b.n, failed, role)
	case reason == nil || reason.Why == "":
		sc.t.Errorf("boot %d: %s has no recorded reason", b.n, failed)
	case trial != "" && reason.Entry != trial:
		sc.t.Errorf("boot %d: failure recorded for %q, want %q (why: %s)", b.n, reason.Entry, trial, reason.Why)
	}
	// The boot that found the failed trial says why it booted the
	// committed root instead: status's last_boot_reason.
	if b.status != nil && b.status.Store != nil {
		if lb := b.status.Store.LastBootReason; lb == nil || !strings.Contains(lb.Why, trial) {
			sc.t.Errorf("boot %d: last_boot_reason %+v, want one naming the failed trial %s", b.n, lb, trial)
		}
	}
}

func (sc *storeScenario) wantData(b *storeBoot, want string) {
	sc.t.Helper()
	if b.data != want {
		sc.t.Errorf("boot %d: persistent data %q, want %q", b.n, b.data, want)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func newStoreScenario(t *testing.T, persistent bool, updates func(a *assets) map[string]string) *storeScenario {
	t.Helper()
	s := newSession(t)
	var u map[string]string
	if updates != nil {
		u = updates(s.a)
	}
	return &storeScenario{t: t, s: s, d: storeDisk(t, s, storeImage(t, s.a, "v1", nil), persistent, u)}
}

const kept = "kept from v1"

// TestStoreCommitRollback: cases a (apply, the trial runs the new image;
// commit, it is committed), e (rollback after a commit boots the previous
// image) and f (a persistent rw layer on the store keeps its data).
func TestStoreCommitRollback(t *testing.T) {
	sc := newStoreScenario(t, true, func(a *assets) map[string]string {
		return map[string]string{"v2": storeImage(t, a, "v2", nil)}
	})
	b := sc.boot("v1", "write,unlock,apply:v2,status")
	sc.wantBooted(b, "root.sqsh", "committed")
	must(t, b.console, `result: unlock: .*its root \(/overlay/robase\) is a squashfs image`)
	must(t, b.console, `result: unlock rc=1`)
	// layer.base: the persistent layer is used with this root (the shadow
	// check's reference, trampoline/shadow.go).
	sc.wantEntries(b, ".lock layer.base root.sqsh")
	if b.status != nil && b.status.RWLayer != "persistent" {
		t.Errorf("boot 1: rw layer %q, want persistent", b.status.RWLayer)
	}
	must(t, b.console, `result: wrote data`)
	must(t, b.console, `result: apply: .*root\.try-1\.sqsh`)
	must(t, b.console, `result: after: entries .*root\.try-1\.sqsh`)

	// a: the trial runs v2.
	b = sc.boot("v2", "commit,status")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	sc.wantData(b, kept)
	// The trial's writes (its own layer) are committed with it: folded
	// into the persistent layer at the next boot.
	must(t, b.console, `result: after: entries \.lock layer\.base layer\.fold root\.prev\.sqsh root\.sqsh shadow\.report \n`)

	// a: v2 is committed.
	b = sc.boot("v2", "rollback,status")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock layer.base root.prev.sqsh root.sqsh shadow.report")
	sc.wantData(b, kept)
	if b.status != nil && b.status.Store != nil && b.status.Store.NextBoot.Trial {
		t.Errorf("boot 3: next boot is a trial after the commit")
	}

	// e: rollback after the commit: v1 again, v2 is the previous root.
	b = sc.boot("v1", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock layer.base root.prev.sqsh root.sqsh shadow.report")
	sc.wantData(b, kept)
	if role, _, ok := b.status.entry("root.prev.sqsh"); !ok || role != "previous" {
		t.Errorf("boot 4: root.prev.sqsh role %q (present %v), want previous", role, ok)
	}

	// f: the data is on the store's persistent layer, outside the images.
	if got := sc.d.cat("/overlay-rw-layer/data/var/data"); got != kept+"\n" {
		t.Errorf("persistent data on the store disk = %q, want %q", got, kept+"\n")
	}
}

// TestStoreFailedTrialAndTries: case b (a trial rebooted without commit is
// followed by the old image, the failure recorded), then case d (--tries 3
// and two power cuts during trial boots: the third trial boot commits), with
// the persistent layer of case f throughout.
func TestStoreFailedTrialAndTries(t *testing.T) {
	sc := newStoreScenario(t, true, func(a *assets) map[string]string {
		return map[string]string{"v2": storeImage(t, a, "v2", nil), "v3": storeImage(t, a, "v3", nil)}
	})
	sc.boot("v1", "write,apply:v2")

	// b: the trial boots, and the device reboots without commit.
	b := sc.boot("v2", "")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	sc.wantData(b, kept)

	b = sc.boot("v1", "apply:v3:3,status")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantFailed(b, "root.trying-0.sqsh")
	sc.wantData(b, kept)
	must(t, b.console, `result: after: entries .*root\.try-3\.sqsh`)

	// d: first trial boot, power cut from inside the guest (sysrq b).
	v, b := sc.start("v3", "crash")
	sc.wantBooted(b, "root.trying-2.sqsh", "trying")
	v.expect(`result: power cut`, bootTimeout)
	mustNot(t, v.wait(bootTimeout), `survived the power cut|harness: step-done`)

	// d: second trial boot, QEMU killed.
	v, b = sc.start("v3", "hang")
	sc.wantBooted(b, "root.trying-1.sqsh", "trying")
	v.expect(`result: hanging`, bootTimeout)
	v.kill()

	// d: the third and last trial boot commits.
	b = sc.boot("v3", "commit")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	sc.wantData(b, kept)

	b = sc.boot("v3", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantEntries(b, ".lock boot.reason failed.reason layer.base layer.failed root.failed.sqsh root.prev.sqsh root.sqsh shadow.report")
	sc.wantData(b, kept)
}

// TestStorePanickingTrial: case c: the new image's /sbin/init exits at once,
// the kernel panics (panic=-1: reboot, and QEMU runs with -no-reboot so it
// exits); the next boot runs the old image and records the failure.
func TestStorePanickingTrial(t *testing.T) {
	sc := newStoreScenario(t, true, func(a *assets) map[string]string {
		return map[string]string{"vbad": storeImage(t, a, "vbad", func(r *rootTree) {
			r.write("sbin/init", "#!/bin/sh\necho \"result: image vbad: init exits\"\nexit 1\n", 0o755)
		})}
	})
	sc.boot("v1", "write,apply:vbad")

	sc.boots++
	v := sc.s.boot(sc.d, sc.opts(""))
	v.expect(`result: image vbad: init exits`, bootTimeout)
	v.expect(`Kernel panic - not syncing: Attempted to kill init`, lineTimeout)
	out := v.wait(60 * time.Second)
	must(t, out, `overlayupd: store: .*trial boot`)

	b := sc.boot("v1", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	sc.wantFailed(b, "root.trying-0.sqsh")
	sc.wantData(b, kept)
}

// segfaultInit is a static C /sbin/init that dies of SIGSEGV at once: PID 1
// dies, and the kernel panics.
const segfaultInit = `#include <unistd.h>
int main(void)
{
	static const char m[] = "result: image vsegv: init segfaults\n";
	if (write(1, m, sizeof m - 1) < 0) {}
	*(volatile int *)0 = 0;
	return 0;
}
`

// TestStoreBootBudget (issue 9, item 1): a committed root whose /sbin/init
// segfaults at every boot (the kernel panics, and reboots) falls back to
// root.prev after overlayupd.boot_budget boots, and status says why.
func TestStoreBootBudget(t *testing.T) {
	cc := needVM(t).arch.cc
	testroot.NeedTools(t, cc)
	src := filepath.Join(t.TempDir(), "segv.c")
	if err := os.WriteFile(src, []byte(segfaultInit), 0o644); err != nil {
		t.Fatal(err)
	}
	segv := filepath.Join(t.TempDir(), "segv")
	if out, err := exec.Command(cc, "-static", "-O1", "-o", segv, src).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, out)
	}
	sc := newStoreScenario(t, false, func(a *assets) map[string]string {
		return map[string]string{"vsegv": storeImage(t, a, "vsegv", func(r *rootTree) { r.copy(segv, "sbin/init", 0o755) })}
	})
	sc.args = []string{"overlayupd.boot_budget=2"}
	// v1 commits the bad image without trying it (commit --force): it is
	// the committed root now, v1 the previous one.
	sc.boot("v1", "apply:vsegv,commit-force")
	for i := 1; i <= 2; i++ {
		sc.boots++
		v := sc.s.boot(sc.d, sc.opts(""))
		v.expect(`result: image vsegv: init segfaults`, bootTimeout)
		v.expect(`Kernel panic - not syncing: Attempted to kill init`, lineTimeout)
		v.wait(60 * time.Second)
	}
	b := sc.boot("v1", "")
	sc.wantBooted(b, "root.sqsh", "committed")
	if b.status.Store.LastBootReason == nil || !strings.Contains(b.status.Store.LastBootReason.Why, "did not boot well 2 times in a row") {
		t.Errorf("last boot reason %+v, want the budget's", b.status.Store.LastBootReason)
	}
	if !strings.Contains(b.entries, "root.prev.sqsh") {
		t.Errorf("entries %q, want the failing root kept as root.prev", b.entries)
	}
	must(t, b.console, `result: bootcount boots-1 \n`) // a fresh count, this boot's

	// The keeper under a real init, with good_after=40s (its floor for an
	// orderly shutdown: 20 s): a shutdown within seconds earns no mark, one
	// after the floor does. That boot shut down within seconds too (the
	// default good_after, floor 30 s): the count goes on.
	sc.args = []string{"overlayupd.boot_budget=3", "overlayupd.good_after=40s"}
	b = sc.boot("v1", "")
	must(t, b.console, `result: bootcount boots-2 \n`)
	must(t, b.console, `boot budget: terminated after [\dms]+, before the 20s an orderly shutdown needs to mark this boot good`)
	b = sc.boot("v1", "sleep:25")
	must(t, b.console, `result: bootcount boots-3 \n`)
	must(t, b.console, `boot budget: this boot is marked good \(an orderly shutdown \(terminated\) after [\dms]+\)`)
}
