package boot_test

import (
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// TestWatchdogOnlyInTrials: the PID-1 path reaches the trial watchdog in a
// trial boot (here told overlayupd.wdt_device=off, as every namespace boot
// is, so that the host's watchdog is never armed), and does nothing about
// a watchdog in a committed boot, even with watchdog keys on the command
// line.
func TestWatchdogOnlyInTrials(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4", "mksquashfs")
	v1, v2 := image(t, "v1", "", nil), image(t, "v2", "", nil)
	img := store(t, map[string]string{"root.sqsh": v1, "root.try-1.sqsh": v2}, nil)
	cmdline := "root=/dev/vda ro init=/sbin/init-overlay overlayupd.trial_deadline=abc overlayupd.wdt_timeout=10"
	got, log := testroot.Boot(t, img, cmdline)
	if got["IMAGE"] != "v2" {
		t.Fatalf("first boot ran %q, want the trial v2:\n%s", got["IMAGE"], log)
	}
	for _, want := range []string{
		"watchdog: overlayupd.trial_deadline=abc: not a duration",
		"watchdog: overlayupd.wdt_device=off: no watchdog: a hang will not roll back for trial root.trying-0.sqsh",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("trial boot: console lacks %q:\n%s", want, log)
		}
	}
	got, log = testroot.Boot(t, img, cmdline)
	if got["IMAGE"] != "v1" {
		t.Fatalf("second boot ran %q, want the committed v1:\n%s", got["IMAGE"], log)
	}
	if strings.Contains(log, "overlayupd: watchdog") || strings.Contains(log, "warning: watchdog") {
		t.Errorf("a committed boot says something about a watchdog:\n%s", log)
	}
}
