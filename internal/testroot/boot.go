package testroot

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Boot runs /sbin/init-overlay as PID 1 of a new PID and mount namespace,
// chrooted into the ext4 image img (with /proc and a nested /run, /run/lock
// already mounted, as an initramfs leaves them), with cmdline as the kernel command line
// and env as the kernel's environment for init. Like a kernel booting with
// "ro", the device is writable and the filesystem read-only. The loop
// device is autoclear: it goes when the namespace dies with its PID 1.
// Nothing reaches the host's mounts (propagation private). It returns the
// console output and the KEY=value lines in it.
func Boot(t testing.TB, img, cmdline string, env ...string) (map[string]string, string) {
	t.Helper()
	log, err := bootFor(t, img, cmdline, 120*time.Second, env...)
	if err != nil || !strings.Contains(log, "INIT-END") {
		t.Fatalf("boot did not reach the end of /sbin/init (err %v):\n%s", err, log)
	}
	report := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9-]*)=(.*)$`).FindAllStringSubmatch(log, -1) {
		report[m[1]] = m[2]
	}
	return report, log
}

// BootFor is Boot for a boot that is not expected to reach an init's end:
// it kills the namespace after d and returns the console output so far.
func BootFor(t testing.TB, img, cmdline string, d time.Duration, env ...string) string {
	t.Helper()
	log, _ := bootFor(t, img, cmdline, d, env...)
	return log
}

func bootFor(t testing.TB, img, cmdline string, d time.Duration, env ...string) (string, error) {
	t.Helper()
	if Emulated() {
		// The tree's init-overlay is OVERLAYUPD_BIN's, the host's build: its
		// boot would test nothing of the emulated architecture (the ARM VM
		// suite boots that architecture's build on its own kernel).
		t.Skipf("boots the host's init-overlay, not this architecture's (%s): make test-arm boots the ARM build", EmulatorEnv)
	}
	mnt := t.TempDir()
	cmdlineFile := filepath.Join(t.TempDir(), "cmdline")
	if !strings.Contains(cmdline, "overlayupd.wdt_device=") {
		// The namespace's devtmpfs is the host's: a trial boot here must
		// never arm the host's watchdog (its keeper dies with the
		// namespace, and the host would reset).
		cmdline += " overlayupd.wdt_device=off"
	}
	cmdline = strings.Join(GoodAtOnce(strings.Fields(cmdline)), " ")
	Must(t, os.WriteFile(cmdlineFile, []byte(cmdline+"\n"), 0o644))
	script := `set -e
mount -o loop "$IMG" "$MNT"
mount -o remount,ro "$MNT"
mount -t proc proc "$MNT/proc"
mount --bind "$CMDLINE" "$MNT/proc/cmdline"
mount -t tmpfs run "$MNT/run"
mkdir "$MNT/run/lock"
mount -t tmpfs lock "$MNT/run/lock"
exec chroot "$MNT" /sbin/init-overlay extra-arg`
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append([]string{"IMG=" + img, "MNT=" + mnt, "CMDLINE=" + cmdlineFile,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
