package keeper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeKeeper is a keeper whose watchdog is a plain file (a magic close
// leaves its 'V' there), whose clock the test moves, and whose keepalives
// are counted.
type fakeKeeper struct {
	*keeper
	dev   string
	slot  string
	clock time.Duration
	pets  int
}

func newFakeKeeper(t *testing.T, c Config) *fakeKeeper {
	t.Helper()
	dir := t.TempDir()
	fk := &fakeKeeper{dev: filepath.Join(dir, "watchdog"), slot: filepath.Join(dir, "roots")}
	if err := os.Mkdir(fk.slot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fk.slot, "root.trying-0.sqsh"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wdt, err := os.OpenFile(fk.dev, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := os.Open(fk.slot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slot.Close() })
	c.WatchdogFD, c.SlotFD, c.Trial = int(wdt.Fd()), int(slot.Fd()), "root.trying-0.sqsh"
	c.Device = "/dev/watchdog0"
	fk.keeper = &keeper{cfg: c, wdt: wdt, log: &klog{}}
	fk.now = func() time.Duration { return fk.clock }
	fk.pet = func(*os.File) error { fk.pets++; return nil }
	old := PID1Comm
	PID1Comm = filepath.Join(dir, "comm") // not systemd
	t.Cleanup(func() { PID1Comm = old })
	return fk
}

// run steps the keeper as its loop does, every wake period, up to until.
func (fk *fakeKeeper) run(t *testing.T, until time.Duration) (done bool) {
	t.Helper()
	for ; fk.clock <= until; fk.clock += WakePeriod(FeedPeriod(fk.cfg.Timeout)) {
		if fk.step() {
			return true
		}
	}
	return false
}

func (fk *fakeKeeper) devText(t *testing.T) string {
	b, err := os.ReadFile(fk.dev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeeperStarvesAtTheDeadline(t *testing.T) {
	fk := newFakeKeeper(t, Config{Timeout: 4 * time.Second, Deadline: 10 * time.Second})
	fk.clock = time.Second
	if fk.run(t, 10*time.Second-time.Millisecond) {
		t.Fatal("the keeper quit before the deadline")
	}
	before := fk.pets
	if before < 9 { // every second (a quarter of 4s) for 9s
		t.Errorf("%d keepalives before the deadline, want at least 9", before)
	}
	if fk.run(t, 30*time.Second) {
		t.Fatal("the keeper quit after the deadline without a commit")
	}
	if fk.pets != before || !fk.starving {
		t.Errorf("after the deadline: %d more keepalives, starving=%v; want none, starving", fk.pets-before, fk.starving)
	}
	if fk.devText(t) != "" {
		t.Errorf("the watchdog got %q: disarmed without a commit", fk.devText(t))
	}
}

// TestKeeperUnknownTimeout: a watchdog whose timeout is unknown is fed
// every UnknownTimeoutFeed, often enough for a watchdog fixed at a second,
// while the trial runs; the deadline is still the trial's: the keeper
// starves it then, not at any multiple of the feed period.
func TestKeeperUnknownTimeout(t *testing.T) {
	fk := newFakeKeeper(t, Config{Deadline: 10 * time.Second}) // Timeout 0: unknown
	var fed []time.Duration
	fk.pet = func(*os.File) error { fed = append(fed, fk.clock); return nil }
	fk.clock = time.Second
	if fk.run(t, 10*time.Second-time.Millisecond) {
		t.Fatal("the keeper quit before the deadline")
	}
	if len(fed) == 0 || fed[0] != time.Second || fed[len(fed)-1] < 10*time.Second-UnknownTimeoutFeed {
		t.Fatalf("fed at %v, want from 1s up to the deadline", fed)
	}
	for i := 1; i < len(fed); i++ {
		if gap := fed[i] - fed[i-1]; gap > UnknownTimeoutFeed {
			t.Fatalf("fed at %v then %v: a gap of %v, want at most %v", fed[i-1], fed[i], gap, UnknownTimeoutFeed)
		}
	}
	n := len(fed)
	if fk.run(t, 30*time.Second) {
		t.Fatal("the keeper quit after the deadline without a commit")
	}
	if len(fed) != n || !fk.starving {
		t.Errorf("after the deadline: %d more keepalives, starving=%v; want none, starving", len(fed)-n, fk.starving)
	}
}

func TestKeeperDisarmsOnCommit(t *testing.T) {
	for _, late := range []bool{false, true} {
		fk := newFakeKeeper(t, Config{Timeout: 4 * time.Second, Deadline: 10 * time.Second})
		fk.clock = time.Second
		if late {
			fk.run(t, 12*time.Second) // past the deadline, before the reset
		}
		// commit: root.trying-0.sqsh -> root.next.sqsh
		if err := os.Rename(filepath.Join(fk.slot, "root.trying-0.sqsh"), filepath.Join(fk.slot, "root.next.sqsh")); err != nil {
			t.Fatal(err)
		}
		if !fk.run(t, fk.clock+time.Second) {
			t.Fatalf("late=%v: the keeper did not end after the commit", late)
		}
		if got := fk.devText(t); got != "V" {
			t.Errorf("late=%v: the device got %q, want the magic close V", late, got)
		}
	}
}

func TestKeeperNowayoutFeedsForGood(t *testing.T) {
	fk := newFakeKeeper(t, Config{Timeout: 4 * time.Second, Deadline: 10 * time.Second, Nowayout: true})
	fk.clock = time.Second
	if err := os.Remove(filepath.Join(fk.slot, "root.trying-0.sqsh")); err != nil {
		t.Fatal(err)
	}
	if fk.run(t, time.Hour/60) {
		t.Fatal("a nowayout keeper quit")
	}
	if fk.pets < 50 || fk.devText(t) != "" {
		t.Errorf("nowayout after the trial: %d keepalives in a minute, device %q; want ~60 and no V", fk.pets, fk.devText(t))
	}
}

func TestKeeperHandsOverToSystemd(t *testing.T) {
	fk := newFakeKeeper(t, Config{Timeout: 4 * time.Second, Deadline: 10 * time.Second})
	root := t.TempDir()
	SystemdConfDir = root
	CmdlinePath = filepath.Join(root, "cmdline")
	defer func() { SystemdConfDir, CmdlinePath = "/", "/proc/cmdline" }()
	for p, body := range map[string]string{
		PID1Comm: "systemd\n",
		filepath.Join(root, "etc/systemd/system.conf"):                 "[Manager]\nRuntimeWatchdogSec=30s\n",
		filepath.Join(root, "usr/lib/systemd/system.conf.d/10-x.conf"): "[Manager]\nRuntimeWatchdogSec=off\n",
		filepath.Join(root, "etc/systemd/system.conf.d/20-board.conf"): "[Manager]\nRuntimeWatchdogSec=1min\n",
		filepath.Join(root, "cmdline"):                                 "ro quiet\n",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := fk.systemdWants(); got != time.Minute || !ok {
		t.Fatalf("systemdWants = %v, want 1m (the last drop-in)", got)
	}
	if err := os.Remove(filepath.Join(fk.slot, "root.trying-0.sqsh")); err != nil {
		t.Fatal(err)
	}
	before := fk.pets
	if !fk.run(t, 2*time.Second) {
		t.Fatal("the keeper did not hand over")
	}
	// Handed over: fed once more and closed without the magic V (the set
	// timeout ioctl fails on a plain file and is reported, not fatal).
	if fk.pets != before+1 || fk.devText(t) != "" {
		t.Errorf("handover: %d keepalives, device %q; want one, no V", fk.pets-before, fk.devText(t))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fk.cfg.WatchdogFD, &st); err == nil {
		t.Error("the keeper still holds the device after the handover")
	}
}

// TestKeepaliveWithoutTheIoctl: a watchdog whose driver refuses
// WDIOC_KEEPALIVE (the kernel's watchdog core answers EOPNOTSUPP when the
// driver lacks WDIOF_KEEPALIVEPING; a legacy driver ENOTTY) is still fed:
// by a write, which every driver takes, and never with a 'V', which would
// let a close after a crash of the keeper stop it. Here the device is a
// plain file, which refuses the ioctl too.
func TestKeepaliveWithoutTheIoctl(t *testing.T) {
	p := filepath.Join(t.TempDir(), "watchdog")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Keepalive(f); err != nil {
		t.Fatalf("Keepalive on a device that refuses the ioctl = %v, want it fed by a write", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || strings.Contains(string(b), "V") {
		t.Fatalf("the device got %q, want a write without 'V'", b)
	}
}
