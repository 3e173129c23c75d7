package keeper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArmUnknownTimeout: a watchdog whose timeout cannot be read
// (WDIOC_GETTIMEOUT fails) nor set (no WDIOF_SETTIMEOUT) may be one fixed
// by its hardware at a second or so. Arm must not guess a long timeout for
// it: the keeper it starts feeds it every UnknownTimeoutFeed, the trial's
// deadline is passed on unchanged, and the console says so. The device is
// a plain file, which refuses every watchdog ioctl (as such a driver
// refuses GETTIMEOUT), and the keeper a script that records its argv: no
// root needed.
func TestArmUnknownTimeout(t *testing.T) {
	dir := t.TempDir()
	dev, slot, argvFile := filepath.Join(dir, "watchdog"), filepath.Join(dir, "roots"), filepath.Join(dir, "argv")
	if err := os.WriteFile(dev, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(slot, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "keeper")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >"+argvFile+".tmp && mv "+argvFile+".tmp "+argvFile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	oldExe, oldPaths, oldClass, oldChar := SelfExe, DevicePaths, SysClassWatchdog, SysDevChar
	SelfExe, DevicePaths = script, []string{dev}
	SysClassWatchdog, SysDevChar = filepath.Join(dir, "class"), filepath.Join(dir, "char")
	t.Cleanup(func() { SelfExe, DevicePaths, SysClassWatchdog, SysDevChar = oldExe, oldPaths, oldClass, oldChar })

	var console []string
	logf := func(format string, a ...any) { console = append(console, fmt.Sprintf(format, a...)) }
	in := TrialInput{Cmdline: "ro", Staged: 90 * time.Second, HasStaged: true, SlotDir: slot, Trial: "root.trying-0.sqsh"}
	if pid := Arm(in, logf, logf); pid == 0 {
		t.Fatalf("Arm started no keeper:\n%s", strings.Join(console, "\n"))
	}
	var out []byte
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if out, err = os.ReadFile(argvFile); err == nil || time.Now().After(end) {
			break
		}
	}
	argv := append([]string{ProcName}, strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")...)
	c, err := ParseArgs(argv)
	if err != nil {
		t.Fatalf("the keeper's argv %q: %v", argv, err)
	}
	if got := FeedPeriod(c.Timeout); c.Timeout != 0 || got != UnknownTimeoutFeed {
		t.Errorf("the keeper is told timeout %v and feeds every %v (argv %q); want unknown, every %v", c.Timeout, got, argv, UnknownTimeoutFeed)
	}
	if c.Deadline != 90*time.Second {
		t.Errorf("the keeper's deadline is %v, want the trial's 1m30s", c.Deadline)
	}
	all := strings.Join(console, "\n")
	if !strings.Contains(all, "timeout unknown") || !strings.Contains(all, "fed every 250ms") {
		t.Errorf("the console does not say that the timeout is unknown:\n%s", all)
	}
}
