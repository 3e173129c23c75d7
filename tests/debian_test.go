package tests

// A real root through the trampoline (the never-brick issue's item 9, the
// arm issue's item 4): Debian bookworm with systemd, made by mmdebstrap
// (debianRoot), not a busybox toy. It has what the toys lack: systemd as
// /sbin/init, /var/lock as a link to /run/lock, dpkg's database, thousands
// of files.
//
// Each image runs the store scenarios' run step (storeRun) from a systemd
// unit ordered after multi-user.target, under bash (pipefail, so the rc
// lines are the commands' own), then powers off in order. The step also
// says whether multi-user.target is active, what / is, and whether it can
// be written.
//
// TestDebianStore (make test-full: four systemd boots): the squashfs store
// boots the root to multi-user.target with its overlay active and
// writable; apply, trial, commit and rollback, all on the device.
// TestDebianStoreQuick (make test: two boots) is its subset: the root up
// through the store, apply, and the trial's commit. TestDebianClassic and
// TestDebianBtrfsUpdate (make test-full): classic mode with tmpfs on the
// same root; a btrfs store where `update --` installs a local .deb with
// dpkg, then commit.
//
// They run on any guest (OVERLAYUPD_VM_ARCH): the root is the guest's
// architecture (debianRoot), and the images and stores hold the guest's
// overlayupd and init-overlay. make test-arm-debian runs TestDebianStore
// and TestDebianBtrfsUpdate on arm64.

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// debRunUnit runs the step named by step= on the kernel command line once
// the system has reached multi-user.target.
const debRunUnit = `[Unit]
Description=overlayupd VM test step
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=journal+console
StandardError=journal+console
ExecStart=/bin/bash /test/boot-step.sh

[Install]
WantedBy=multi-user.target
`

// debBootStep is the Debian image's counterpart of the busybox images'
// /sbin/init: it reports, runs the step and powers off (in order: the
// keeper, if any, sees its SIGTERM).
const debBootStep = `set -o pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "harness: rootmount $(awk '$2 == "/" {m = $1 " " $3 " " $4} END {print m}' /proc/mounts)"
echo "result: deb multi-user $(systemctl is-active multi-user.target)"
echo "result: deb failed units $(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
echo "result: deb root $(awk '$2 == "/" {t = $3} END {print t}' /proc/mounts)"
echo "result: deb upper $(awk '$2 == "/overlay/rwdata" {t = $3} END {print t}' /proc/mounts)"
if echo "written by the test" > /etc/test-written && [ -s /etc/test-written ]; then
	echo "result: deb writable yes"
else
	echo "result: deb writable no"
fi
echo "result: deb var-lock $(readlink /var/lock || echo not-a-link)"
systemd-analyze time --no-pager 2>&1 | head -1 | sed 's/^/result: deb time: /'
systemd-analyze blame --no-pager 2>&1 | head -6 | sed 's/^/result: deb blame: /'
step=
for arg in $(cat /proc/cmdline); do
	case $arg in step=*) step=${arg#step=} ;; esac
done
rc=0
if [ -n "$step" ]; then
	(. "/test/$step.sh")
	rc=$?
fi
echo "harness: step-done step=$step rc=$rc"
sync
systemctl poweroff --no-block
`

// debActs are the Debian images' own actions, run after storeRun's.
const debActs = `
for a in $(arg act | tr , ' '); do
	case $a in
	deb-install)
		# The .deb goes through the apt cache, which update binds into its
		# chroot from outside.
		cp /overlay/store/updates/overlayupd-hello.deb /var/cache/apt/archives/ &&
		overlayupd update -- dpkg -i /var/cache/apt/archives/overlayupd-hello.deb 2>&1 | sed 's/^/result: deb-install: /'
		echo "result: deb-install rc=$?" ;;
	deb-check)
		echo "result: deb hello $(dpkg-query -W -f '${Status} ${Version}' overlayupd-hello 2>&1) file $(cat /usr/share/overlayupd-hello/hello 2>&1)" ;;
	esac
done
`

// debianImage is the cached Debian root whose /etc/version is version.
func debianImage(t *testing.T, a *assets, version string) string {
	t.Helper()
	return debianRoot(t, debianSpec{
		Name:    "bookworm-" + version,
		Include: []string{"systemd-sysv"}, // the same base tarball as case e
		Rev:     "1-" + shortSum(storeLib+storeRun+debRunUnit+debBootStep+debActs),
		MaxSize: 150 << 20,
		Customize: func(t testing.TB, dir string) {
			testroot.Apply(t, dir,
				testroot.File("etc/version", version+"\n", 0o644),
				// The CLI under test lies on the store (bin/overlayupd), so
				// the cached image need not change with every build of it.
				testroot.Symlink("/overlay/store/bin/overlayupd", "usr/sbin/overlayupd"),
				testroot.File("etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444),
				testroot.Symlink("/dev/null", "etc/systemd/system/systemd-firstboot.service"),
				testroot.File("etc/systemd/system/test-step.service", debRunUnit, 0o644),
				testroot.Symlink("/etc/systemd/system/test-step.service", "etc/systemd/system/multi-user.target.wants/test-step.service"),
				testroot.File("test/boot-step.sh", debBootStep, 0o755),
				testroot.File("test/lib.sh", storeLib, 0o644),
				testroot.File("test/run.sh", storeRun+debActs, 0o755),
			)
			// Debian's own /var/lock (a link to /run/lock) is kept: the
			// store's boot path must cope with it.
			if l, err := os.Readlink(filepath.Join(dir, "var/lock")); err != nil || l != "/run/lock" {
				t.Fatalf("the Debian base has no /var/lock -> /run/lock link (%q, %v): the test would not cover it", l, err)
			}
		},
	})
}

// debianStoreDisk is storeDisk for Debian images: bigger, and with the
// CLI on the store for the images' /usr/sbin/overlayupd.
func debianStoreDisk(t *testing.T, s *session, v1 string, updates map[string]string) *disk {
	t.Helper()
	top := testroot.NewTree(t)
	if err := run("", s.a.bin, append([]string{"store", "init", top, "--image", v1}, s.a.trampolineArgs()...)...); err != nil {
		t.Fatalf("overlayupd store init: %v", err)
	}
	add := []testroot.Applier{testroot.Dir("updates", 0o755), testroot.CopyFile(s.a.guestBin, "bin/overlayupd", 0o755)}
	for name, img := range updates {
		add = append(add, testroot.CopyFile(img, "updates/"+name+".sqsh", 0o644))
	}
	testroot.Apply(t, top, add...)
	return &disk{t: t, path: testroot.Ext4(t, top, "768M", "-L", "store"), fstype: "ext4"}
}

// debianBootOpts gives systemd room: more memory, no first-boot prompt, and
// no getty: the root has no udev, so the console's device unit never shows
// up, and the serial getty's job would hold multi-user.target back for the
// 90s of its device's timeout.
func debianBootOpts(o bootOpts) bootOpts {
	o.args = append(o.args, "systemd.firstboot=off", "systemd.show_status=0", "systemd.mask=getty.target")
	o.qemuArgs = append(o.qemuArgs, "-m", "1024")
	return o
}

// debianBoot boots sc's disk with the Debian step doing act and checks what
// every Debian boot must show: multi-user.target reached, / an overlay that
// takes writes, /var/lock still Debian's link.
func debianBoot(sc *storeScenario, want, act string) *storeBoot {
	t := sc.t
	t.Helper()
	sc.boots++
	start := time.Now()
	v := sc.s.boot(sc.d, debianBootOpts(sc.opts(act)))
	v.expect(`harness: step-done step=run rc=\d+`, 6*time.Minute)
	out := unitLines(v.wait(2 * time.Minute))
	b := parseStoreBoot(t, sc.boots, out)
	sc.wantImage(b, want)
	wantDebianUp(t, sc.boots, out)
	for _, cmd := range []string{"apply", "commit", "rollback", "update", "deb-install"} {
		if m := regexp.MustCompile(`result: ` + cmd + ` rc=(\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
			t.Errorf("boot %d: %s failed (rc=%s):\n%s", sc.boots, cmd, m[1],
				strings.Join(regexp.MustCompile(`(?m)^result: `+cmd+`: .*$`).FindAllString(out, -1), "\n"))
		}
	}
	t.Logf("boot %d (%s, act=%s): %v", sc.boots, want, act, time.Since(start).Round(time.Second))
	return b
}

// reUnitPrefix is what systemd puts before a unit's line on the console.
var reUnitPrefix = regexp.MustCompile(`(?m)^\[ *\d+\.\d+\] [\w.-]+\[\d+\]: `)

// unitLines strips the kernel time and the unit's name from the lines that
// systemd's units wrote to the console, so they read as the busybox
// images' do.
func unitLines(console string) string { return reUnitPrefix.ReplaceAllString(console, "") }

func wantDebianUp(t *testing.T, n int, out string) {
	t.Helper()
	for _, re := range []string{
		`result: deb multi-user active`,
		`result: deb root overlay\s`,
		`result: deb writable yes`,
		`result: deb var-lock /run/lock`,
		`harness: step-done step=run rc=0`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("boot %d: no %q; console tail:\n%s", n, re, tail(out, 40))
		}
	}
	if m := regexp.MustCompile(`result: deb failed units (.*)`).FindStringSubmatch(out); m != nil && strings.TrimSpace(m[1]) != "" {
		t.Logf("boot %d: failed units: %s", n, m[1])
	}
	t.Logf("boot %d: %s", n, strings.Join(regexp.MustCompile(`(?m)^result: deb (time|blame): .*$`).FindAllString(out, -1), "\n"))
}

// TestDebianStoreQuick is TestDebianStore's fast subset, in make test: two
// systemd boots. The committed Debian root boots through the squashfs store
// to multi-user.target with its overlay as / and writable (debianBoot's
// wantDebianUp) and applies a second image on the device; that trial boots
// the same way and commits.
func TestDebianStoreQuick(t *testing.T) {
	s := newSession(t)
	start := time.Now()
	d1, d2 := debianImage(t, s.a, "deb1"), debianImage(t, s.a, "deb2")
	t.Logf("Debian images ready after %v", time.Since(start).Round(time.Second))
	sc := &storeScenario{t: t, s: s, d: debianStoreDisk(t, s, d1, map[string]string{"deb2": d2})}

	b := debianBoot(sc, "deb1", "apply:deb2,status")
	sc.wantBooted(b, "root.sqsh", "committed")
	must(t, b.console, `result: apply rc=0`)
	must(t, b.console, `result: after: entries .*root\.try-1\.sqsh`)
	b = debianBoot(sc, "deb2", "commit,status")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	must(t, b.console, `result: commit rc=0`)
	must(t, b.console, `(?m)^result: after: entries \.lock root\.prev\.sqsh root\.sqsh\s*$`)
	t.Logf("two boots, apply and commit: %v in all", time.Since(start).Round(time.Second))
}

// TestDebianStore: the real root through the squashfs store, with apply,
// trial, commit and rollback run on the device.
func TestDebianStore(t *testing.T) {
	if os.Getenv("OVERLAYUPD_FULL") != "1" {
		t.Skip("four systemd boots under TCG (about 10 minutes): make test-full runs it")
	}
	s := newSession(t)
	start := time.Now()
	d1, d2 := debianImage(t, s.a, "deb1"), debianImage(t, s.a, "deb2")
	fi, _ := os.Stat(d1)
	t.Logf("Debian images ready after %v (%d MiB each)", time.Since(start).Round(time.Second), fi.Size()>>20)
	sc := &storeScenario{t: t, s: s, d: debianStoreDisk(t, s, d1, map[string]string{"deb2": d2})}

	b := debianBoot(sc, "deb1", "apply:deb2")
	sc.wantBooted(b, "root.sqsh", "committed")
	b = debianBoot(sc, "deb2", "commit")
	sc.wantBooted(b, "root.trying-0.sqsh", "trying")
	b = debianBoot(sc, "deb2", "rollback")
	sc.wantBooted(b, "root.sqsh", "committed")
	b = debianBoot(sc, "deb1", "status")
	sc.wantBooted(b, "root.sqsh", "committed")
	// The trial's write to /etc went to the tmpfs layer: gone.
	must(t, b.console, `result: after: status: +previous +root\.prev\.sqsh`)
}

// TestDebianClassic: classic mode (tmpfs over the disk's own root) on the
// same Debian root, as the original script is used.
func TestDebianClassic(t *testing.T) {
	if os.Getenv("OVERLAYUPD_FULL") != "1" {
		t.Skip("a second systemd boot path: make test-full runs it")
	}
	s := newSession(t)
	img := debianImage(t, s.a, "deb1")
	tree := t.TempDir()
	if err := run("", "unsquashfs", "-q", "-n", "-f", "-d", tree, img); err != nil {
		t.Fatalf("unsquashfs: %v", err)
	}
	// Classic mode runs from the root itself: the CLI and the trampoline
	// are the root's own.
	_ = os.Remove(filepath.Join(tree, "usr/sbin/overlayupd"))
	testroot.Apply(t, tree,
		testroot.CopyFile(s.a.guestBin, "usr/sbin/overlayupd", 0o755),
		testroot.CopyFile(s.a.guestInit, "sbin/init-overlay", 0o755),
	)
	d := &disk{t: t, path: testroot.Ext4(t, tree, "768M", "-L", "root"), fstype: "ext4"}
	v := s.boot(d, debianBootOpts(bootOpts{init: "/sbin/init-overlay", step: "run", args: []string{"root=/dev/vda", "ro"}}))
	v.expect(`harness: step-done step=run rc=\d+`, 6*time.Minute)
	out := unitLines(v.wait(2 * time.Minute))
	wantDebianUp(t, 1, out)
	must(t, out, `result: deb upper tmpfs`)
}

// TestDebianBtrfsUpdate: a btrfs store boots the Debian root; `update --`
// installs a .deb built here with dpkg in a snapshot; the trial shows the
// package, and commit keeps it.
func TestDebianBtrfsUpdate(t *testing.T) {
	if os.Getenv("OVERLAYUPD_FULL") != "1" {
		t.Skip("a btrfs store of the systemd root: make test-full runs it")
	}
	s := newSession(t)
	img := debianImage(t, s.a, "deb1")
	deb := helloDeb(t)
	dir := t.TempDir()
	if err := run("", "cp", deb, filepath.Join(dir, "overlayupd-hello.deb")); err != nil {
		t.Fatal(err)
	}
	d := btrfsStoreDisk(t, s, img, nil, "bin", "updates")
	addToBtrfs(t, d.path, map[string]string{
		"bin/overlayupd":               s.a.guestBin,
		"updates/overlayupd-hello.deb": deb,
	})
	sc := &storeScenario{t: t, s: s, d: d, args: []string{"rootfstype=btrfs", "rootflags=subvolid=5"}}
	b := debianBoot(sc, "deb1", "deb-install")
	must(t, b.console, `result: deb-install rc=0`)
	b = debianBoot(sc, "deb1", "deb-check,commit")
	must(t, b.console, `result: deb hello install ok installed 1\.0 file hello from a package`)
	sc.wantBooted(b, "root.trying-0", "trying")
	b = debianBoot(sc, "deb1", "deb-check")
	must(t, b.console, `result: deb hello install ok installed 1\.0 file hello from a package`)
	sc.wantBooted(b, "root", "committed")
}

// helloDeb builds a tiny package with dpkg-deb: one file, one version.
func helloDeb(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	testroot.Apply(t, dir,
		testroot.File("pkg/DEBIAN/control", "Package: overlayupd-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: overlayupd tests <tests@invalid>\nDescription: a file, installed by overlayupd update in a VM test\n", 0o644),
		testroot.File("pkg/usr/share/overlayupd-hello/hello", "hello from a package\n", 0o644),
	)
	out := filepath.Join(dir, "overlayupd-hello.deb")
	if err := run("", "dpkg-deb", "--root-owner-group", "--build", pkg, out); err != nil {
		t.Fatalf("dpkg-deb: %v", err)
	}
	return out
}

// addToBtrfs copies files into a btrfs image's top level, loop-mounted in a
// private mount namespace.
func addToBtrfs(t *testing.T, img string, files map[string]string) {
	t.Helper()
	mnt := t.TempDir()
	script := "set -e\nmount -o loop,subvolid=5 \"$IMG\" \"$MNT\"\ntrap 'umount \"$MNT\"' EXIT\n"
	env := []string{"IMG=" + img, "MNT=" + mnt}
	i := 0
	for dst, src := range files {
		i++
		n := strconv.Itoa(i)
		script += "cp \"$S" + n + "\" \"$MNT/$D" + n + "\"\n"
		env = append(env, "S"+n+"="+src, "D"+n+"="+dst)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy into the btrfs store: %v\n%s", err, out)
	}
}

func shortSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}
