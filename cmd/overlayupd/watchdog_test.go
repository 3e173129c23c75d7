package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

// TestCommitIfTrial: --if-trial commits a trial, and does nothing (exit 0)
// in a committed boot, in a boot from no image of the store, and when the
// booted trial was rolled back meanwhile.
func TestCommitIfTrial(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	before := treeDigest(t, top)
	for _, booted := range []string{"root.sqsh", ""} {
		fakeBooted(e, booted)
		out, err := run(t, e, "overlayupd", "commit", "--if-trial", "--store", top)
		if err != nil || !strings.Contains(out, "nothing to commit") {
			t.Errorf("booted %q: commit --if-trial = %v\n%s; want exit 0, nothing to commit", booted, err, out)
		}
	}
	if after := treeDigest(t, top); after != before {
		t.Errorf("commit --if-trial outside a trial changed the store")
	}
	img := bootable().squashfs(t)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	trial := bootTrial(t, e, top)
	out, err := run(t, e, "overlayupd", "commit", "--if-trial", "--store", top, "--health-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "committed root.sqsh (was the trial "+trial+")") {
		t.Fatalf("commit --if-trial in the trial: %v\n%s", err, out)
	}
	if _, err := os.Stat(slotPath(top, trial)); !os.IsNotExist(err) {
		t.Errorf("the trial %s is still there after the commit", trial)
	}
}

// TestCommitAfter: --after waits, then checks again: a trial rolled back
// while it waited is not committed.
func TestCommitAfter(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, _, trial := trialStore(t, e)
	start := time.Now()
	out, err := run(t, e, "overlayupd", "commit", "--if-trial", "--after", "300ms", "--store", top, "--health-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "committed") {
		t.Fatalf("commit --after: %v\n%s", err, out)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("commit --after 300ms returned after %v", d)
	}
	_ = trial

	e2 := testEnv(t)
	top2, _, _, trial2 := trialStore(t, e2)
	// What the loop device says once the trial was rolled back, 100ms in.
	rolledBack := time.Now().Add(100 * time.Millisecond)
	e2.booted = func(*trampoline.Store) (string, error) {
		if time.Now().After(rolledBack) {
			return "root.failed.sqsh", nil
		}
		return trial2, nil
	}
	out, err = run(t, e2, "overlayupd", "commit", "--if-trial", "--after", "500ms", "--store", top2)
	if err != nil || !strings.Contains(out, "not a trial") {
		t.Errorf("a trial that ended while commit waited: %v\n%s; want exit 0, not a trial", err, out)
	}
	if _, err := os.Stat(slotPath(top2, trial2)); err != nil {
		t.Errorf("the trial was touched: %v", err)
	}
	if out, err := run(t, e2, "overlayupd", "commit", "--if-trial", "--force", "--store", top2); err == nil {
		t.Errorf("--if-trial --force accepted:\n%s", out)
	}
}

// TestApplyDeadline: apply --deadline records the trial's deadline for the
// boot; an apply without it removes the old one.
func TestApplyDeadline(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	st := trampoline.Open(top, squash.Format{})
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--deadline", "90s", bootable().squashfs(t)); err != nil {
		t.Fatalf("apply --deadline: %v\n%s", err, out)
	}
	if d, ok, err := st.TrialDeadline(); !ok || err != nil || d != 90*time.Second {
		t.Errorf("deadline after apply --deadline 90s: %v %v %v", d, ok, err)
	}
	for _, bad := range []string{"abc", "0", "-1m"} {
		if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--deadline", bad, bootable().squashfs(t)); err == nil {
			t.Errorf("apply --deadline %s accepted:\n%s", bad, out)
		}
	}
	if d, _, _ := st.TrialDeadline(); d != 90*time.Second {
		t.Errorf("a refused apply changed the deadline to %v", d)
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, bootable().squashfs(t)); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if _, ok, _ := st.TrialDeadline(); ok {
		t.Errorf("apply without --deadline kept the old trial's deadline")
	}
}

// TestStatusWatchdog: status names the keeper of a trial, and says when a
// trial runs without one.
func TestStatusWatchdog(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, _, trial := trialStore(t, e)
	type js struct {
		Store struct {
			Watchdog *keeper.Report `json:"trial_watchdog"`
		} `json:"store"`
	}
	status := func() (*keeper.Report, string) {
		out, err := run(t, e, "overlayupd", "status", "--store", top, "--json")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		var s js
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		text, _ := run(t, e, "overlayupd", "status", "--store", top)
		return s.Store.Watchdog, text
	}
	e.keeper = func() (int, *keeper.Config) { return 0, nil }
	r, text := status()
	if r == nil || r.Armed || r.Summary != keeper.NoWatchdog || !strings.Contains(text, "watchdog: "+keeper.NoWatchdog) {
		t.Errorf("trial without a keeper: %+v\n%s", r, text)
	}
	e.keeper = func() (int, *keeper.Config) {
		return 42, &keeper.Config{WatchdogFD: 3, Device: "/dev/watchdog0", Identity: "i6300ESB timer", Timeout: 10 * time.Second,
			SlotFD: 4, Trial: trial, Deadline: keeper.Uptime() + time.Hour}
	}
	r, text = status()
	if r == nil || !r.Armed || r.PID != 42 || r.LeftS < 3500 || !strings.Contains(text, "must commit within") {
		t.Errorf("trial with a keeper: %+v\n%s", r, text)
	}
	fakeBooted(e, "root.sqsh")
	e.keeper = func() (int, *keeper.Config) { return 0, nil }
	if r, text = status(); r != nil || strings.Contains(text, "\nwatchdog:") {
		t.Errorf("committed boot without a keeper: %+v\n%s", r, text)
	}
}

// TestCommitIfTrialMarksGood: in a boot of the committed root, commit
// --if-trial marks the boot good (the boot budget's count starts again),
// as mark-good does; in a boot of the previous root it leaves the count.
func TestCommitIfTrialMarksGood(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	count := func(k int) string { return slotPath(top, trampoline.BootCountName(k)) }
	if err := os.WriteFile(count(2), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fakeBooted(e, "root.prev.sqsh")
	if out, err := run(t, e, "overlayupd", "commit", "--if-trial", "--store", top); err != nil || !strings.Contains(out, "nothing to commit") {
		t.Fatalf("commit --if-trial in a boot of root.prev: %v\n%s", err, out)
	}
	if _, err := os.Stat(count(2)); err != nil {
		t.Errorf("a boot of another root changed the count: %v", err)
	}
	fakeBooted(e, "root.sqsh")
	out, err := run(t, e, "overlayupd", "commit", "--if-trial", "--store", top)
	if err != nil || !strings.Contains(out, "nothing to commit") || !strings.Contains(out, "marked good") {
		t.Fatalf("commit --if-trial in a committed boot: %v\n%s; want nothing committed, marked good", err, out)
	}
	if _, err := os.Stat(count(0)); err != nil {
		t.Errorf("the count did not start again: %v", err)
	}
}

// TestApplyMarksCommittedBootGood: an update staged from a boot of the
// committed root marks that boot good, so quick apply-and-reboot cycles
// (and a failed trial's fallback) never spend a working root's boot
// budget; staged from a boot of another root, it leaves the count.
func TestApplyMarksCommittedBootGood(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	img := bootable().squashfs(t)
	count := func(k int) string { return slotPath(top, trampoline.BootCountName(k)) }
	if err := os.WriteFile(count(2), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fakeBooted(e, "root.prev.sqsh")
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil || strings.Contains(out, "marked good") {
		t.Fatalf("apply in a boot of root.prev: %v\n%s; want staged, no mark", err, out)
	}
	if _, err := os.Stat(count(2)); err != nil {
		t.Errorf("an apply from another root changed the count: %v", err)
	}
	fakeBooted(e, "root.sqsh")
	out, err := run(t, e, "overlayupd", "apply", "--store", top, img)
	if err != nil || !strings.Contains(out, "this boot of root.sqsh is marked good") {
		t.Fatalf("apply in a committed boot: %v\n%s; want staged and marked good", err, out)
	}
	if _, err := os.Stat(count(0)); err != nil {
		t.Errorf("the count did not start again: %v", err)
	}
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, img); err != nil || strings.Contains(out, "marked good") {
		t.Errorf("apply with the count at 0: %v\n%s; want no mark line", err, out)
	}
}
