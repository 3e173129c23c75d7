package tests

// The trial watchdog (issue 10) in the VM: a trial that hangs, or whose
// kernel dies, is reset by the watchdog and rolled back; a trial that
// commits is left alone; a committed boot opens no watchdog at all. The
// hardware cases boot Debian's generic kernel, whose i6300esb driver
// drives QEMU's emulated watchdog (`-device i6300esb -action
// watchdog=reset`; the cloud kernel lacks the driver); the softdog case
// boots the cloud kernel with softdog, the fallback for boards without a
// hardware watchdog.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

var (
	genericOnce sync.Once
	genericA    *assets
	genericErr  error
)

// useGenericKernel makes s boot Debian's generic kernel (fetched and cached
// like the cloud one, under cache/kernel-generic).
func useGenericKernel(t *testing.T, s *session) {
	t.Helper()
	needArch(t, s.a, "QEMU's i6300ESB is an x86 PCI watchdog driven by Debian's generic amd64 kernel, and a reset shows by SeaBIOS's banner", "amd64")
	genericOnce.Do(func() {
		a := *s.a
		genericErr = withCacheLock(func() error {
			return cachedKernelOf(&a, filepath.Join(cacheDir(), "kernel-generic"), genericKernel)
		})
		a.preload = genericPreload
		genericA = &a
	})
	if genericErr != nil {
		testroot.SkipOrFail(t, "Debian's generic kernel unavailable: %v\n  run as root: apt-get update && apt-get download linux-image-amd64's kernel", genericErr)
	}
	s.a = genericA
}

// withCacheLock runs fn holding the cache directory's lock, as fetchAssets
// does: parallel test processes never fetch the same thing twice.
func withCacheLock(fn func() error) error {
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	return fn()
}

// Trial images for the watchdog cases: each runs its own step, whatever
// act= says (act= is for the committed root booted after the reset).
const (
	wdTrialHead = ". /test/lib.sh\nshow\necho \"result: trial wdfds $(ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c '/dev/watchdog')\"\n"
	wdHang      = wdTrialHead + "echo \"result: trial hangs\"\nsleep 100000\n"
	wdCrash     = wdTrialHead + "echo \"result: kernel crash\"\nsync\necho c > /proc/sysrq-trigger\nsleep 100000\n"
	// wdCommit starts the automatic commit as busybox's rcS would (the
	// init.d script that install --auto-commit put there, told to wait 5s).
	wdCommit = wdTrialHead + `up() { cut -d. -f1 /proc/uptime; }
/etc/init.d/S99overlayupd-commit start
while [ "$(up)" -lt 45 ]; do sleep 1; done
echo "result: keepers $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -o 'overlayupd-keepe[r]' | wc -l)"
echo "result: alive at $(up)s"
`
)

func wdImage(t *testing.T, a *assets, version, step string) string {
	return storeImage(t, a, version, func(r *rootTree) {
		r.step("run", step)
		if step == wdCommit {
			r.write("etc/default/overlayupd-commit", "OVERLAYUPD_COMMIT_AFTER=5s\n", 0o644)
			if err := run("", a.bin, "install", "--auto-commit", "--root", r.dir); err != nil {
				t.Fatalf("install --auto-commit: %v", err)
			}
		}
	})
}

// esb are the boot options of QEMU's i6300ESB watchdog: driver loaded by
// the initramfs, reset on expiry, the reset rebooting the VM in place so
// that the next boot shows on the same console (and the device's "I reset
// the board" flag survives for the next boot's bootstatus).
func esb(o bootOpts) bootOpts {
	o.modules = append(o.modules, "i6300esb")
	o.qemuArgs = append(o.qemuArgs, "-device", "i6300esb", "-action", "watchdog=reset")
	return inPlace(o)
}

// inPlace makes a reset reboot the VM in place, and the firmware print its
// banner on the serial console (SeaBIOS's sercon), so that the console
// shows the instant of the reset: "SeaBIOS" comes 0.3s after it, the
// kernel's banner 10-25s later under TCG.
func inPlace(o bootOpts) bootOpts {
	o.reboot = true
	o.qemuArgs = append(o.qemuArgs, "-fw_cfg", "name=etc/sercon-port,file="+serconPort())
	return o
}

var (
	serconOnce sync.Once
	serconPath string
)

// serconPort is a fw_cfg file holding the serial port SeaBIOS prints to
// (0x3f8, little-endian).
func serconPort() string {
	serconOnce.Do(func() {
		serconPath = filepath.Join(scratchDir, "sercon-port")
		_ = os.WriteFile(serconPath, []byte{0xf8, 0x03}, 0o644)
	})
	return serconPath
}

// reReset is the firmware's banner after a reset (see inPlace).
const reReset = `SeaBIOS \(version`

// wantResetAfter checks that the reset came a timeout after the last
// keepalive, which was at most a pet interval (a quarter of the timeout)
// before the line the test measured from. The lower bound is looser than
// that: on a loaded host the line reaches the test late.
func wantResetAfter(t *testing.T, what string, took, timeout time.Duration) {
	t.Helper()
	lo, hi := timeout/2, timeout+3*time.Second
	t.Logf("%s: the watchdog reset the VM %v after it (timeout %v)", what, took.Round(100*time.Millisecond), timeout)
	if took < lo || took > hi {
		t.Errorf("%s: the reset came %v after it, want %v..%v", what, took.Round(100*time.Millisecond), lo, hi)
	}
}

var reBanner = `Linux version \S+`

// splitBoots cuts a console into its boots, at the kernel's banner.
func splitBoots(console string) []string {
	idx := regexp.MustCompile(reBanner).FindAllStringIndex(console, -1)
	var out []string
	for i, m := range idx {
		end := len(console)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, console[m[0]:end])
	}
	return out
}

// TestWatchdog: cases a–d of issue 10 on QEMU's i6300ESB, one store disk:
//
//	boot 1  committed v1 (d: no watchdog open, no keeper); apply vhang --deadline 20s
//	boot 2  trial vhang hangs (a): reset within deadline + timeout, v1 boots
//	        in the same VM, status names the watchdog; apply vcrash
//	boot 3  trial vcrash: echo c with panic=0 (b): the dead kernel is reset
//	        by the hardware; v1 boots, the failure recorded; apply vcommit
//	boot 4  trial vcommit with deadline 20s and timeout 30s (c, and the bad
//	        input "deadline shorter than the timeout"): its init.d script
//	        (put there by install --auto-commit) commits 5s after it starts,
//	        the keeper disarms, still up past 40s, no reset
func TestWatchdog(t *testing.T) {
	const deadline, timeout = 20 * time.Second, 10 * time.Second
	sc := newStoreScenario(t, false, func(a *assets) map[string]string {
		return map[string]string{
			"vhang":   wdImage(t, a, "vhang", wdHang),
			"vcrash":  wdImage(t, a, "vcrash", wdCrash),
			"vcommit": wdImage(t, a, "vcommit", wdCommit),
		}
	})
	useGenericKernel(t, sc.s)

	// d: a committed boot opens no watchdog and starts no keeper.
	sc.boots++
	out := sc.s.run(sc.d, esb(sc.opts("wdcheck,applyd:vhang:20s")))
	b := parseStoreBoot(t, sc.boots, out)
	sc.wantImage(b, "v1")
	must(t, out, `result: wdfds 0\n`)
	must(t, out, `result: keepers 0\n`)
	mustNot(t, out, `overlayupd: (warning: )?watchdog`)
	must(t, out, `result: apply rc=0`)

	// a: the trial hangs; the keeper stops feeding at the deadline.
	sc.boots++
	v := sc.s.boot(sc.d, esb(sc.opts("wdcheck,status,applyd:vcrash:10m", "overlayupd.wdt_timeout=10")))
	v.expect(reBanner, bootTimeout)
	t0 := time.Now()
	v.expect(`overlayupd: watchdog: "i6300ESB timer" \(/dev/watchdog0?\), timeout 10s, fed by keeper pid \d+ for trial root\.trying-0\.sqsh: the trial must commit within 20s of boot \(staged with --deadline\)`, bootTimeout)
	v.expect(`trial root\.trying-0\.sqsh did not commit within its deadline \(20s after boot\): no more keepalives`, 2*deadline)
	tDeadline := time.Now()
	v.expect(reReset, timeout+30*time.Second)
	wantResetAfter(t, "case a, the deadline", time.Since(tDeadline), timeout)
	took := time.Since(t0)
	v.expect(reBanner, bootTimeout)
	v.expect(`harness: step-done step=run rc=\d+`, bootTimeout)
	boots := splitBoots(v.wait(bootTimeout))
	if len(boots) != 2 {
		t.Fatalf("boot %d: %d kernel boots on the console, want the trial and the one after the reset", sc.boots, len(boots))
	}
	trial := parseStoreBoot(t, sc.boots, boots[0])
	sc.wantImage(trial, "vhang")
	must(t, boots[0], `result: trial wdfds 1\n`)
	must(t, boots[0], `result: trial hangs`)
	must(t, boots[0], `"trial_watchdog": \{\s*"armed": true,[^}]*"deadline_s": 20,`)
	// The reset comes within the deadline plus the timeout after the
	// kernel started (t0 is when its banner reached the host; 5s of slack
	// for a loaded host's console: with the driver's default timeout, 30s,
	// it would come 20s later still).
	t.Logf("case a: reset %v after the trial's kernel banner (deadline %v + timeout %v)", took.Round(100*time.Millisecond), deadline, timeout)
	if took < deadline || took > deadline+timeout+5*time.Second {
		t.Errorf("the reset came %v after the trial's kernel started, want %v..%v", took.Round(100*time.Millisecond), deadline, deadline+timeout)
	}
	b = parseStoreBoot(t, sc.boots, boots[1])
	sc.wantImage(b, "v1")
	sc.wantFailed(b, "root.trying-0.sqsh")
	if _, r, _ := b.status.entry("root.failed.sqsh"); r == nil || !strings.Contains(r.Why, "watchdog reset or hang: the trial did not commit within its deadline") {
		t.Errorf("boot %d: root.failed reason %+v, want the watchdog's", sc.boots, r)
	}
	must(t, boots[1], `result: after: status: +failed +root\.failed\.sqsh .*watchdog reset or hang`)
	must(t, boots[1], `result: wdfds 0\n`)
	must(t, boots[1], `result: apply rc=0`)

	// b: the trial's kernel dies (panic=0: no reboot of its own); only a
	// hardware watchdog can reset it.
	sc.boots++
	v = sc.s.boot(sc.d, esb(sc.opts("status,applyd:vcommit:20s", "overlayupd.wdt_timeout=10", "panic=0")))
	v.expect(`result: kernel crash`, bootTimeout)
	v.expect(`Kernel panic`, lineTimeout)
	t0 = time.Now()
	v.expect(reReset, timeout+30*time.Second)
	wantResetAfter(t, "case b, the kernel panic", time.Since(t0), timeout)
	v.expect(reBanner, bootTimeout)
	v.expect(`harness: step-done step=run rc=\d+`, bootTimeout)
	boots = splitBoots(v.wait(bootTimeout))
	b = parseStoreBoot(t, sc.boots, boots[len(boots)-1])
	sc.wantImage(b, "v1")
	sc.wantFailed(b, "root.trying-0.sqsh")
	must(t, b.console, `result: after: status: +failed +root\.failed\.sqsh .*watchdog reset or hang`)

	// c: the trial commits at 5s, the keeper disarms, no reset follows.
	sc.boots++
	v = sc.s.boot(sc.d, esb(sc.opts("", "overlayupd.wdt_timeout=30", "overlayupd.trial_deadline=20s")))
	v.expect(`overlayupd: warning: watchdog: the trial deadline 20s is shorter than the watchdog timeout 30s: a trial that does not commit is reset up to 50s after boot`, bootTimeout)
	v.expect(`overlayupd-commit: committing the trial \(if this is one\) after 5s`, bootTimeout)
	// The keeper sees the commit's rename and disarms: its line and the
	// commit's own come in either order.
	committed := `overlayupd-commit: committed root\.sqsh \(was the trial root\.trying-0\.sqsh\)`
	disarmed := `overlayupd: watchdog: trial root\.trying-0\.sqsh is over \(committed or rolled back\): watchdog disarmed`
	v.expect(`(?s)(`+committed+`.*`+disarmed+`|`+disarmed+`.*`+committed+`)`, 40*time.Second)
	v.expect(`result: keepers 0\n`, 90*time.Second)
	v.expect(`result: alive at 4\ds`, 10*time.Second)
	out = v.wait(bootTimeout)
	if n := len(splitBoots(out)); n != 1 {
		t.Errorf("boot %d: %d kernel boots, want 1: the watchdog reset a committed trial", sc.boots, n)
	}
	sc.wantImage(parseStoreBoot(t, sc.boots, out), "vcommit")
}

// TestWatchdogSoftdog: the fallback for boards without a hardware watchdog:
// softdog catches a trial that hangs past its deadline (it cannot catch a
// dead kernel). softdog has no boot status, so the failure is recorded as
// "never committed". The trial also gets overlayupd.trial_deadline=abc: one
// clear line, and it boots with the deadline it was staged with.
func TestWatchdogSoftdog(t *testing.T) {
	needArch(t, needVM(t), "a reset shows by SeaBIOS's banner on the serial console (x86 firmware)", "amd64")
	sc := newStoreScenario(t, false, func(a *assets) map[string]string {
		return map[string]string{"vhang": wdImage(t, a, "vhang", wdHang)}
	})
	soft := func(o bootOpts) bootOpts { o.modules = append(o.modules, "softdog"); return inPlace(o) }
	sc.boots++
	out := sc.s.run(sc.d, soft(sc.opts("applyd:vhang:30s")))
	must(t, out, `result: apply rc=0`)

	sc.boots++
	v := sc.s.boot(sc.d, soft(sc.opts("status", "overlayupd.trial_deadline=abc", "overlayupd.wdt_timeout=5")))
	v.expect(`overlayupd: warning: watchdog: overlayupd\.trial_deadline=abc: not a duration.*; ignored`, bootTimeout)
	v.expect(`overlayupd: watchdog: "Software Watchdog" \(/dev/watchdog0?\), timeout 5s, .*must commit within 30s of boot \(staged with --deadline\)`, bootTimeout)
	v.expect(`softdog catches a hung system and a missed deadline, not a dead kernel`, lineTimeout)
	v.expect(`did not commit within its deadline \(30s after boot\)`, 60*time.Second)
	t0 := time.Now()
	v.expect(reReset, 60*time.Second)
	wantResetAfter(t, "softdog, the deadline", time.Since(t0), 5*time.Second)
	v.expect(`harness: step-done step=run rc=\d+`, bootTimeout)
	boots := splitBoots(v.wait(bootTimeout))
	mustNot(t, boots[0], `harness: step-done`)
	must(t, boots[0], `result: trial hangs`)
	b := parseStoreBoot(t, sc.boots, boots[len(boots)-1])
	sc.wantImage(b, "v1")
	sc.wantFailed(b, "root.trying-0.sqsh")
	must(t, b.console, `result: after: status: +failed +root\.failed\.sqsh .*never committed`)
}
