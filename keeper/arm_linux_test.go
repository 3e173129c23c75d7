package keeper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	oldExe, oldPaths, oldClass, oldChar, oldIs := SelfExe, DevicePaths, SysClassWatchdog, SysDevChar, isWatchdog
	SelfExe, DevicePaths = script, []string{dev}
	SysClassWatchdog, SysDevChar = filepath.Join(dir, "class"), filepath.Join(dir, "char")
	isWatchdog = func(*os.File) error { return nil } // the plain file stands in for a driver
	t.Cleanup(func() {
		SelfExe, DevicePaths, SysClassWatchdog, SysDevChar, isWatchdog = oldExe, oldPaths, oldClass, oldChar, oldIs
	})

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

// TestOpenRefusesNonWatchdog: Open writes nothing to, and does not hang
// on, a path that is not a watchdog: a regular file (a disk would be
// walked over by the feeds), a FIFO with no reader (open would block PID 1
// for ever), /dev/null (a watchdog that never resets). Each is refused
// with what it is and what to give instead.
func TestOpenRefusesNonWatchdog(t *testing.T) {
	dir := t.TempDir()
	file, fifo := filepath.Join(dir, "file"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{file, "a file, not a character device"},
		{fifo, "no such device or address"}, // ENXIO: O_NONBLOCK, no reader
		{"/dev/null", "WDIOC_GETSUPPORT"},
	}
	// A block device (a disk named by a typo): a node of loop0's number,
	// checked on a read-only descriptor (a write-mode close of a block
	// device makes udev probe it, under tests that may be using it).
	// Making the node needs root; a /tmp mounted nodev refuses the open.
	if blk := filepath.Join(dir, "disk"); unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))) == nil {
		if f, err := os.OpenFile(blk, os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
			t.Logf("block device node: %v (not checked here)", err)
		} else {
			err := isWatchdog(f)
			f.Close()
			if err == nil || !strings.Contains(err.Error(), "a block device") {
				t.Errorf("isWatchdog(block device) = %v, want a refusal naming it", err)
			}
		}
	}
	for _, tc := range cases {
		done := make(chan error, 1)
		go func() {
			f, _, err := Open(tc.path)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "wdt_device") && tc.path != fifo {
				t.Errorf("Open(%s) = %v, want a refusal saying %q", tc.path, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) hangs", tc.path)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "data" {
		t.Errorf("the file was written: %q", b)
	}
}
