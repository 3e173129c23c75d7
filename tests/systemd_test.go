package tests

// Case e of the watchdog issue: a trial root with systemd commits by itself
// through overlayupd-commit.service once boot-complete.target is reached;
// with a failing health check it does not, and its deadline rolls it back.
// The root is Debian bookworm with systemd-sysv (debianRoot). It also
// proves the handover: systemd has RuntimeWatchdogSec=20s, and after the
// commit PID 1 holds the watchdog, the keeper is gone.

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/dist"
	"github.com/overlayupd/overlayupd/internal/testroot"
)

// sdHealth is a health check as systemd-bless-boot wants one: required by
// boot-complete.target and ordered before it. It fails when the kernel
// command line says healthcheck=fail.
const sdHealth = `[Unit]
Description=test health check (fails with healthcheck=fail)
Before=boot-complete.target
DefaultDependencies=no
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
StandardOutput=journal+console
ExecStart=/bin/sh -c 'if grep -q healthcheck=fail /proc/cmdline; then echo "result: sd health check fails"; exit 1; fi; echo "result: sd health check passes"'

[Install]
RequiredBy=boot-complete.target
`

// sdReport prints what the test checks, after the commit unit ran (or was
// skipped because the health check failed), then powers off unless the
// test waits for the deadline.
const sdReport = `[Unit]
Description=test report
After=overlayupd-commit.service boot-complete.target

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh /test/sd-report.sh

[Install]
WantedBy=multi-user.target
`

const sdReportScript = `sleep 3   # the keeper looks once a second; systemd retries the watchdog every 10s
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	[ "$(ls -l /proc/1/fd 2>/dev/null | grep -c /dev/watchdog)" -gt 0 ] && break
	grep -q healthcheck=fail /proc/cmdline && break
	sleep 2
done
echo "result: sd image $(cat /etc/version) pid1 $(cat /proc/1/comm)"
echo "result: sd keepers $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -o 'overlayupd-keepe[r]' | wc -l)"
echo "result: sd pid1 wdfds $(ls -l /proc/1/fd 2>/dev/null | grep -c /dev/watchdog)"
echo "result: sd commit unit $(systemctl is-active overlayupd-commit.service)"
overlayupd status 2>&1 | sed -n '/^store:/,$p' | sed 's/^/result: sd status: /'
if grep -q healthcheck=fail /proc/cmdline; then
	echo "result: sd waiting for the deadline"
else
	echo "result: sd powering off"
	systemctl poweroff
fi
`

// systemdRoot is the cached systemd image of case e (under 150 MiB).
func systemdRoot(t *testing.T, a *assets) string {
	unit := sha256.Sum256(append(append([]byte(sdHealth+sdReport+sdReportScript), dist.CommitUnit...), dist.CommitInit...))
	return debianRoot(t, debianSpec{
		Name:    "bookworm-systemd",
		Include: []string{"systemd-sysv"},
		Rev:     "3-" + hex.EncodeToString(unit[:6]),
		MaxSize: 150 << 20,
		Customize: func(t testing.TB, dir string) {
			testroot.Apply(t, dir,
				testroot.File("etc/version", "vsd\n", 0o644),
				// The CLI under test is put on the store by the test (the
				// cached image does not change with every build of it).
				testroot.Symlink("/overlay/store/bin/overlayupd", "usr/sbin/overlayupd"),
				testroot.File("etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444),
				testroot.Symlink("/dev/null", "etc/systemd/system/systemd-firstboot.service"),
				testroot.File("etc/systemd/system.conf.d/watchdog.conf", "[Manager]\nRuntimeWatchdogSec=20s\n", 0o644),
				testroot.File("etc/systemd/system/test-health.service", sdHealth, 0o644),
				testroot.Symlink("/etc/systemd/system/test-health.service", "etc/systemd/system/boot-complete.target.requires/test-health.service"),
				testroot.File("etc/systemd/system/test-report.service", sdReport, 0o644),
				testroot.Symlink("/etc/systemd/system/test-report.service", "etc/systemd/system/multi-user.target.wants/test-report.service"),
				testroot.File("test/sd-report.sh", sdReportScript, 0o755),
			)
			// Debian's own /var/lock (a link to /run/lock) is kept: the
			// store's boot path copes with it.
			if l, err := os.Readlink(filepath.Join(dir, "var/lock")); err != nil || l != "/run/lock" {
				t.Fatalf("the Debian base has no /var/lock -> /run/lock link (%q, %v)", l, err)
			}
			// The installer under test puts the automatic commit in place.
			if err := run("", a.bin, "install", "--auto-commit", "--root", dir); err != nil {
				t.Fatalf("install --auto-commit: %v", err)
			}
		},
	})
}

// TestWatchdogSystemd is case e: two systemd boots under TCG, in make test.
func TestWatchdogSystemd(t *testing.T) {
	s := newSession(t)
	useGenericKernel(t, s)
	start := time.Now()
	vsd := systemdRoot(t, s.a)
	fi, _ := os.Stat(vsd)
	t.Logf("systemd image %s: %d MiB (ready after %v)", filepath.Base(vsd), fi.Size()>>20, time.Since(start).Round(time.Second))
	v1 := storeImage(t, s.a, "v1", nil)

	// A store whose trial is the systemd root, staged on the host.
	disk := func() *storeScenario {
		top := testroot.NewTree(t)
		if err := run("", s.a.bin, "store", "init", top, "--image", v1); err != nil {
			t.Fatalf("store init: %v", err)
		}
		if err := run("", s.a.bin, "apply", "--store", top, vsd); err != nil {
			t.Fatalf("apply: %v", err)
		}
		testroot.Apply(t, top, testroot.CopyFile(s.a.bin, "bin/overlayupd", 0o755))
		return &storeScenario{t: t, s: s, d: &disk{t: t, path: testroot.Ext4(t, top, "512M", "-L", "store"), fstype: "ext4"}}
	}
	opts := func(sc *storeScenario, args ...string) bootOpts {
		o := esb(sc.opts("status", append([]string{"systemd.firstboot=off", "overlayupd.wdt_timeout=10"}, args...)...))
		o.qemuArgs = append(o.qemuArgs, "-m", "1024")
		return o
	}

	// The trial commits by itself after boot-complete.target, and hands
	// the watchdog over to systemd.
	sc := disk()
	t0 := time.Now()
	v := sc.s.boot(sc.d, opts(sc, "overlayupd.trial_deadline=5m"))
	v.expect(`overlayupd: watchdog: "i6300ESB timer" .* for trial root\.trying-0\.sqsh`, bootTimeout)
	v.expect(`result: sd health check passes`, 4*time.Minute)
	v.expect(`overlayupd: watchdog: trial root\.trying-0\.sqsh is over: /dev/watchdog0? handed to systemd \(RuntimeWatchdogSec\), running with timeout 20s`, 2*time.Minute)
	v.expect(`result: sd image vsd pid1 systemd`, 2*time.Minute)
	v.expect(`result: sd keepers 0\n`, lineTimeout)
	v.expect(`result: sd pid1 wdfds 1\n`, lineTimeout)
	v.expect(`result: sd commit unit active`, lineTimeout)
	v.expect(`result: sd status: booted: root\.sqsh`, lineTimeout)
	v.expect(`result: sd powering off`, lineTimeout)
	out := v.wait(2 * time.Minute)
	if n := len(splitBoots(out)); n != 1 {
		t.Errorf("case e: %d kernel boots, want 1 (no reset)", n)
	}
	t.Logf("case e, the good trial: committed and powered off after %v", time.Since(t0).Round(time.Second))

	// A failing health check: no commit, the deadline rolls it back.
	sc = disk()
	t0 = time.Now()
	v = sc.s.boot(sc.d, opts(sc, "overlayupd.trial_deadline=100s", "healthcheck=fail"))
	v.expect(`result: sd health check fails`, 4*time.Minute)
	v.expect(`result: sd keepers 1\n`, 2*time.Minute)
	v.expect(`result: sd pid1 wdfds 0\n`, lineTimeout)
	v.expect(`result: sd commit unit inactive`, lineTimeout)
	v.expect(`result: sd status: watchdog: .*the trial must commit within 1m40s of boot`, lineTimeout)
	v.expect(`did not commit within its deadline \(1m40s after boot\)`, 3*time.Minute)
	v.expect(reReset, 30*time.Second)
	v.expect(`harness: step-done step=run rc=\d+`, bootTimeout)
	boots := splitBoots(v.wait(bootTimeout))
	b := parseStoreBoot(t, 2, boots[len(boots)-1])
	sc.wantImage(b, "v1")
	sc.wantFailed(b, "root.trying-0.sqsh")
	must(t, b.console, `result: after: status: +failed +root\.failed\.sqsh .*watchdog reset or hang`)
	mustNot(t, strings.Join(boots[:len(boots)-1], ""), `result: sd status: booted: root\.sqsh`)
	t.Logf("case e, the failing health check: rolled back after %v", time.Since(t0).Round(time.Second))
}
