package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

func TestNonRootRefusedNamingTheCommand(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	e.geteuid = func() int { return 1000 }
	for _, args := range [][]string{{"disable"}, {"enable"}, {"lock"}, {"unlock"}, {"install"}, {"uninstall"}} {
		_, err := run(t, e, "overlayctl", args...)
		if err == nil || !strings.Contains(err.Error(), "overlayctl "+args[0]+": must be run as root") {
			t.Errorf("%v as non-root: err = %v, want a refusal naming the command", args, err)
		}
	}
	// Reading is fine without root, and so is a dry run.
	if _, err := run(t, e, "overlayupd", "status"); err != nil {
		t.Errorf("status as non-root: %v", err)
	}
}

func TestOverlayctlHasNoInit(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	if _, err := run(t, e, "overlayctl", "init"); err == nil {
		t.Error("overlayctl init ran; only overlayupd has the init command")
	}
	if _, err := run(t, e, "overlayupd", "init", "--help"); err != nil {
		t.Errorf("overlayupd init --help: %v", err)
	}
}

func TestInitRefusedOutsidePID1(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	_, err := run(t, e, "overlayupd", "init")
	if err == nil || !strings.Contains(err.Error(), "refusing to run outside PID 1") {
		t.Errorf("err = %v, want a refusal", err)
	}
}

func TestIsSubcommand(t *testing.T) {
	t.Parallel()
	root := newRootCmd("overlayupd", testEnv(t))
	for args, want := range map[string]bool{"": false, "status": true, "single": false, "--help": false} {
		if got := isSubcommand(root, strings.Fields(args)); got != want {
			t.Errorf("isSubcommand(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestInstallBootDir(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "cmdline.txt")
	orig := "console=serial0,115200 root=/dev/mmcblk0p2 rw rootwait\n"
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--dry-run")
	if err != nil || !strings.Contains(out, "+console=serial0,115200 root=/dev/mmcblk0p2 ro rootwait init=/sbin/init-overlay") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(p); string(got) != orig {
		t.Fatalf("dry run changed the file to %q", got)
	}
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir); err != nil || !strings.Contains(out, "updated") {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir); err != nil || !strings.Contains(out, "already up to date") {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if _, err := run(t, e, "overlayupd", "uninstall", "--boot-dir", dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "console=serial0,115200 root=/dev/mmcblk0p2 ro rootwait\n" {
		t.Errorf("after uninstall: %q", got)
	}
}

func TestInstallRefusesCmdlineWithoutRoot(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cmdline.txt"), []byte("console=tty1 quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, e, "overlayupd", "install", "--boot-dir", dir)
	if err == nil {
		t.Fatal("install on a cmdline.txt without root= succeeded")
	}
}

func TestInstallBtrfsStore(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "cmdline.txt")
	if err := os.WriteFile(p, []byte("root=/dev/mmcblk0p2 rootfstype=btrfs rootwait\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--btrfs-store"); err != nil {
		t.Fatalf("install --btrfs-store: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(p); string(got) != "root=/dev/mmcblk0p2 rootfstype=btrfs rootwait ro rootflags=subvolid=5 init=/sbin/init-overlay\n" {
		t.Errorf("cmdline.txt = %q, want rootflags=subvolid=5 added", got)
	}
}

// TestInstallStoreDevice walks the Raspberry Pi story on a copy of Raspberry
// Pi OS Bookworm's boot partition: install points root= at the store's
// partition, uninstall --restore brings the card back as it was.
func TestInstallStoreDevice(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	orig := "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n"
	stub := "# The file you are looking for has moved to /boot/firmware/cmdline.txt\n"
	testroot.Apply(t, dir,
		testroot.File("cmdline.txt", stub, 0o644),
		testroot.File("firmware/cmdline.txt", orig, 0o644))
	p := filepath.Join(dir, "firmware", "cmdline.txt")
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--store-device", "PARTUUID=6c586e13-03"); err != nil {
		t.Fatalf("install --store-device: %v\n%s", err, out)
	}
	want := "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-03 rootfstype=ext4 fsck.repair=yes rootwait quiet ro init=/sbin/init-overlay\n"
	if got, _ := os.ReadFile(p); string(got) != want {
		t.Errorf("firmware/cmdline.txt = %q\nwant %q", got, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cmdline.txt")); string(got) != stub {
		t.Errorf("the Bookworm stub /boot/cmdline.txt was changed: %q", got)
	}
	out, err := run(t, e, "overlayupd", "uninstall", "--boot-dir", dir, "--restore")
	if err != nil {
		t.Fatalf("uninstall --restore: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(p); string(got) != orig {
		t.Errorf("after uninstall --restore: %q, want the original %q", got, orig)
	}
	if !strings.Contains(out, "restored from") {
		t.Errorf("uninstall --restore says %q, want it to name the backup", out)
	}
	// A btrfs store named by PARTUUID: the line's rootfstype=ext4 (the old
	// root's) must become btrfs, or the kernel cannot mount the store.
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--store-device", "PARTUUID=6c586e13-03", "--btrfs-store"); err != nil {
		t.Fatalf("install --store-device PARTUUID --btrfs-store: %v\n%s", err, out)
	}
	want = "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-03 rootfstype=btrfs fsck.repair=yes rootwait quiet ro rootflags=subvolid=5 init=/sbin/init-overlay\n"
	if got, _ := os.ReadFile(p); string(got) != want {
		t.Errorf("with --btrfs-store: firmware/cmdline.txt = %q\nwant %q", got, want)
	}
	if out, err := run(t, e, "overlayupd", "uninstall", "--boot-dir", dir, "--restore"); err != nil {
		t.Fatalf("uninstall --restore: %v\n%s", err, out)
	}
	for _, bad := range []string{"PARTUUID=", "PARTUUID=a b", "/nonexistent/dev", "/dev/null"} {
		if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--store-device", bad); err == nil {
			t.Errorf("install --store-device %q succeeded:\n%s", bad, out)
		}
	}
	if got, _ := os.ReadFile(p); string(got) != orig {
		t.Errorf("a refused --store-device changed the file: %q", got)
	}
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pid  int
		args []string
		sub  bool
		want role
	}{
		{"init-overlay", 1, nil, false, roleBoot},
		{"init-overlay", 1, []string{"single"}, false, roleBoot}, // kernel arguments for init
		{"overlayupd", 1, nil, false, roleBoot},                  // init=/usr/sbin/overlayupd
		{"overlayupd", 1, []string{"status"}, true, roleCLI},     // a container's 'overlayupd status'
		{"init-overlay", 4242, nil, false, roleRefuse},
		{"init-overlay", 4242, []string{"single"}, false, roleRefuse},
		{"init-overlay", 4242, []string{"status"}, true, roleCLI}, // '/sbin/init-overlay status' by hand: never the PID-1 path
		{"init-overlay", 4242, []string{"--help"}, false, roleCLI},
		{"overlayupd", 4242, nil, false, roleCLI},
		{"overlayctl", 4242, []string{"status"}, true, roleCLI},
	} {
		if got := whoAmI(tc.name, tc.pid, tc.args, tc.sub); got != tc.want {
			t.Errorf("whoAmI(%s, pid %d, subcommand %v) = %d, want %d", tc.name, tc.pid, tc.sub, got, tc.want)
		}
	}
}

// TestInitOverlayByHand: the real binary, called init-overlay by a user
// (not PID 1), refuses the PID-1 path and mounts nothing; with a command
// it answers like overlayupd.
func TestInitOverlayByHand(t *testing.T) {
	if testing.Short() && os.Getenv("OVERLAYUPD_BIN") == "" {
		t.Skip("builds overlayupd with make: skipped with -short unless OVERLAYUPD_BIN is set")
	}
	link := filepath.Join(t.TempDir(), "init-overlay")
	testroot.Must(t, os.Symlink(testroot.BinaryPath(t), link))
	before, _ := os.ReadFile("/proc/self/mountinfo")
	out, err := exec.Command(link).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "runs only as PID 1") {
		t.Errorf("init-overlay by hand: %v\n%s; want exit 2 and the explanation", err, out)
	}
	if after, _ := os.ReadFile("/proc/self/mountinfo"); string(after) != string(before) {
		t.Error("init-overlay by hand changed the mounts")
	}
	if out, err := exec.Command(link, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "overlayupd") {
		t.Errorf("init-overlay --help: %v\n%s", err, out)
	}
}

// TestJSONErrors: a command run with --json that fails prints the error as
// a JSON object on stdout too (a script reading stdout got nothing), and
// its message on stderr; without --json, stdout stays empty.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	missing := filepath.Join(t.TempDir(), "nonexistent")
	for _, tc := range []struct {
		args []string
		json bool
	}{
		{[]string{"status", "--store", missing, "--json"}, true},
		{[]string{"digest", missing, "--json"}, true},
		{[]string{"status", "--store", missing}, false},
	} {
		root := newRootCmd("overlayupd", e)
		root.SetArgs(tc.args)
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		cmd, err := root.ExecuteC()
		var stdout, stderr bytes.Buffer
		if code := exitWith(cmd, err, &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit code %d, want 1", tc.args, code)
		}
		if !strings.Contains(stderr.String(), "nonexistent") {
			t.Errorf("%v: stderr %q lacks the message", tc.args, stderr.String())
		}
		var obj struct {
			Error string `json:"error"`
		}
		jerr := json.Unmarshal(stdout.Bytes(), &obj)
		switch {
		case tc.json && (jerr != nil || !strings.Contains(obj.Error, "nonexistent")):
			t.Errorf("%v: stdout %q is not {\"error\": ...} (%v)", tc.args, stdout.String(), jerr)
		case !tc.json && stdout.Len() > 0:
			t.Errorf("%v without --json: stdout %q", tc.args, stdout.String())
		}
	}
	if code := exitWith(nil, nil, io.Discard, io.Discard); code != 0 {
		t.Errorf("success: exit code %d", code)
	}
}
