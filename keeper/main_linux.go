package keeper

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Paths the keeper reads at the end of a trial; tests point them elsewhere.
var (
	PID1Comm       = "/proc/1/comm"
	CmdlinePath    = "/proc/cmdline"
	SystemdConfDir = "/"
)

// Main is the keeper process: main calls it when argv[0] is ProcName. It
// returns the exit status.
func Main(argv []string) int {
	cfg, err := ParseArgs(argv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (it is started by init-overlay in a trial boot, not by hand)\n", ProcName, err)
		return 2
	}
	// The name ps and top show (argv[0] is already ProcName; comm would be "exe").
	if name, err := unix.BytePtrFromString("overlayupd-keep"); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
	}
	k := &keeper{cfg: cfg, log: newLog(), now: Uptime, pet: Keepalive}
	if cfg.BootCount != "" {
		return k.markGoodLoop()
	}
	if cfg.WatchdogFD > 0 {
		k.wdt = os.NewFile(uintptr(cfg.WatchdogFD), cfg.Device)
	}
	return k.run()
}

type keeper struct {
	cfg      Config
	wdt      *os.File
	log      *klog
	now      func() time.Duration // Uptime; tests move it
	pet      func(*os.File) error // Keepalive; tests count it
	lastPet  time.Duration
	starving bool
	forever  bool
}

func (k *keeper) run() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	t := time.NewTicker(WakePeriod(FeedPeriod(k.cfg.Timeout)))
	defer t.Stop()
	for {
		if done := k.step(); done {
			return 0
		}
		select {
		case s := <-sig:
			return k.stop(s)
		case <-t.C:
		}
	}
}

// step runs one tick; it reports whether the keeper is done.
func (k *keeper) step() bool {
	now := k.now()
	tk := Tick{Uptime: now}
	var systemdTimeout time.Duration
	if !k.forever {
		tk.TrialOver = k.trialOver()
		if tk.TrialOver {
			systemdTimeout, tk.Systemd = k.systemdWants()
		}
	}
	act := Next(k.cfg, tk)
	if k.forever {
		act = Pet
	}
	switch act {
	case Pet:
		feed := FeedPeriod(k.cfg.Timeout)
		if k.lastPet == 0 || FeedDue(now-k.lastPet, feed, WakePeriod(feed)) {
			if err := k.pet(k.wdt); err != nil {
				k.log.warn("%v", err)
			}
			k.lastPet = now
		}
	case Starve:
		if !k.starving {
			k.starving = true
			k.log.warn("watchdog: trial %s did not commit within its deadline (%s after boot): no more keepalives, the board resets %s and boots the committed root",
				k.cfg.Trial, FormatDuration(k.cfg.Deadline), within(k.cfg.Timeout))
		}
	case Disarm:
		k.syncSlot()
		if err := MagicClose(k.wdt); err != nil {
			k.log.warn("%v", err)
		}
		k.log.info("watchdog: trial %s is over (committed or rolled back): watchdog disarmed", k.cfg.Trial)
		return true
	case PetForever:
		k.forever = true
		k.log.info("watchdog: trial %s is over; the watchdog cannot be stopped (nowayout): the keeper feeds it from now on", k.cfg.Trial)
	case Handover:
		k.syncSlot()
		k.handover(systemdTimeout)
		return true
	}
	return false
}

// trialOver reports whether the trial entry left the slot directory. Why a
// descriptor and not a path: the store moves from / to /overlay/store with
// the pivot, and the descriptor follows it. Any error but ENOENT (an I/O
// error on a dying card) counts as "still there": the watchdog stays armed.
func (k *keeper) trialOver() bool {
	if k.cfg.SlotFD == 0 {
		return false
	}
	var st unix.Stat_t
	err := unix.Fstatat(k.cfg.SlotFD, k.cfg.Trial, &st, unix.AT_SYMLINK_NOFOLLOW)
	return err == unix.ENOENT
}

// syncSlot makes the rename that ended the trial durable before the
// watchdog lets go: the commit command fsyncs it too, but the keeper may
// see the rename in the instant before that fsync.
func (k *keeper) syncSlot() {
	if k.cfg.SlotFD > 0 {
		_ = unix.Fsync(k.cfg.SlotFD)
	}
}

// systemdWants reports whether systemd is PID 1 and wants this device
// (RuntimeWatchdogSec is set), and the timeout it wants: 0 for
// RuntimeWatchdogSec=default, which keeps the device's (known or not).
func (k *keeper) systemdWants() (time.Duration, bool) {
	comm, err := os.ReadFile(PID1Comm)
	if err != nil || string(trimNL(comm)) != "systemd" {
		return 0, false
	}
	var confs [][]byte
	for _, p := range systemdConfFiles(SystemdConfDir) {
		if b, err := os.ReadFile(p); err == nil {
			confs = append(confs, b)
		}
	}
	cmdline, _ := os.ReadFile(CmdlinePath)
	s := ParseSystemd(confs, string(cmdline))
	if !s.Wants(k.cfg.Device) {
		return 0, false
	}
	if s.Default || s.Runtime <= 0 {
		return 0, true
	}
	return s.Runtime, true
}

// systemdConfFiles lists system.conf and its drop-ins in the order systemd
// reads them: the main file, then every *.conf of the drop-in directories
// sorted by name, where /etc overrides /run overrides /usr/lib of the same
// name.
func systemdConfFiles(root string) []string {
	files := []string{filepath.Join(root, "etc/systemd/system.conf")}
	byName := map[string]string{}
	for _, d := range []string{"usr/lib/systemd/system.conf.d", "usr/local/lib/systemd/system.conf.d", "run/systemd/system.conf.d", "etc/systemd/system.conf.d"} {
		m, _ := filepath.Glob(filepath.Join(root, d, "*.conf"))
		for _, p := range m {
			byName[filepath.Base(p)] = p
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, byName[n])
	}
	return files
}

// handover leaves the device running, programmed with systemd's timeout t
// (0: the one it runs with, RuntimeWatchdogSec=default), and closes it
// without the magic 'V': the watchdog never stops (no gap), and systemd,
// which retries opening it every half RuntimeWatchdogSec while it is busy,
// opens it next (never two openers: the kernel allows one, and the keeper
// is gone first).
func (k *keeper) handover(t time.Duration) {
	if t <= 0 {
		t = k.cfg.Timeout
	} else if got, err := SetTimeout(k.wdt, t); err != nil {
		k.log.warn("%v; handing it over with timeout %s", err, FormatTimeout(k.cfg.Timeout))
		t = k.cfg.Timeout
	} else {
		t = got
	}
	if err := k.pet(k.wdt); err != nil {
		k.log.warn("%v", err)
	}
	_ = k.wdt.Close()
	k.log.info("watchdog: trial %s is over: %s handed to systemd (RuntimeWatchdogSec), running with timeout %s", k.cfg.Trial, k.cfg.Device, FormatTimeout(t))
}

// stop ends the keeper on a signal (shutdown kills every process): one last
// keepalive unless the deadline passed, then a close without 'V', so the
// watchdog still guards the rest of the shutdown.
func (k *keeper) stop(s os.Signal) int {
	if k.wdt != nil {
		if !k.starving {
			_ = k.pet(k.wdt)
		}
		_ = k.wdt.Close()
	}
	k.log.info("watchdog: keeper stopped by %v; the watchdog stays armed (timeout %s) through the shutdown", s, FormatTimeout(k.cfg.Timeout))
	return 0
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// klog writes the keeper's lines to the console (its stderr) and its
// warnings to the kernel log, as PID 1's log does.
type klog struct{ kmsg *os.File }

func newLog() *klog {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &klog{}
	}
	return &klog{kmsg: f}
}

func (l *klog) info(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "overlayupd: %s\n", fmt.Sprintf(format, a...))
}

func (l *klog) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintf(os.Stderr, "overlayupd: warning: %s\n", msg)
	if l.kmsg != nil {
		fmt.Fprintf(l.kmsg, "<4>overlayupd: %s\n", msg)
	}
}
