package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/snapshot"
	"golang.org/x/sys/unix"
)

// shellStore is a btrfs store whose root has a shell (busybox), for update;
// the env runs the real binary as update's chroot helper.
func shellStore(t *testing.T, e *env, extra ...testroot.Applier) string {
	t.Helper()
	bin := testroot.BinaryPath(t)
	e.executable = func() (string, error) { return bin, nil }
	appliers := append(bootable().appliers(), testroot.Remove("bin/sh"), // the stub gives way to busybox
		testroot.Busybox("bin/sh", "bin/echo", "bin/cat", "bin/sleep", "bin/false", "bin/test", "bin/ls", "bin/kill", "bin/head", "bin/true"),
		testroot.File("etc/version", "v1\n", 0o644),
		testroot.File("etc/resolv.conf", "nameserver 192.0.2.1 # the root's own\n", 0o644),
		testroot.Dir("var/cache/apt/archives", 0o755))
	tree := testroot.NewTree(t, append(appliers, extra...)...)
	top := testroot.MountBtrfs(t, 1<<30)
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--btrfs", "--from", tree); err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	return top
}

func TestUpdate(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	// This namespace's apt cache and DNS configuration, as the update
	// must see them: downloads land outside the snapshot.
	testroot.Must(t, os.MkdirAll("/var/cache/apt/archives", 0o755))
	testroot.Must(t, unix.Mount("apt", "/var/cache/apt/archives", "tmpfs", 0, "size=8m"))
	defer unix.Unmount("/var/cache/apt/archives", unix.MNT_DETACH)
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	script := `echo v2 > /etc/version
echo pkg > /var/cache/apt/archives/pkg.deb
echo "resolv=$(head -1 /etc/resolv.conf)"
test -e /proc/self/status && echo proc-ok
test -x /usr/sbin/policy-rc.d && /usr/sbin/policy-rc.d; echo policy=$?
echo update=$OVERLAYUPD_UPDATE
echo scratch > /tmp/scratch
sleep 1000 &
echo started`
	start := time.Now()
	out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", script)
	if err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("update took %s: the background sleep was not killed", d)
	}
	for _, want := range []string{"proc-ok", "policy=101", "update=1", "started", "staged root.try-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root", "root.try-1"}) {
		t.Fatalf("after update: %q, want root and root.try-1", got)
	}
	try := slotPath(top, "root.try-1")
	if b, _ := os.ReadFile(filepath.Join(try, "etc/version")); string(b) != "v2\n" {
		t.Errorf("new root's /etc/version = %q, want v2", b)
	}
	if b, _ := os.ReadFile(slotPath(top, "root/etc/version")); string(b) != "v1\n" {
		t.Errorf("the running root changed: /etc/version = %q", b)
	}
	if b, err := os.ReadFile("/var/cache/apt/archives/pkg.deb"); err != nil || string(b) != "pkg\n" {
		t.Errorf("the download did not land in the apt cache outside: %q, %v", b, err)
	}
	if len(hostResolv) > 0 {
		if first := strings.SplitN(string(hostResolv), "\n", 2)[0]; !strings.Contains(out, "resolv="+first) {
			t.Errorf("the update did not see the host's resolv.conf (%q):\n%s", first, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(try, "etc/resolv.conf")); !strings.Contains(string(b), "the root's own") {
		t.Errorf("the new root's resolv.conf = %q, want its own kept", b)
	}
	for _, gone := range []string{"usr/sbin/policy-rc.d", "tmp/scratch", "var/cache/apt/archives/pkg.deb"} {
		if _, err := os.Lstat(filepath.Join(try, gone)); err == nil {
			t.Errorf("%s landed in the new root", gone)
		}
	}
	if info, err := snapshot.GetInfo(try); err != nil || !info.ReadOnly {
		t.Errorf("staged root: %+v, %v; want read-only", info, err)
	}
}

func TestUpdateFails(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "echo v2 > /etc/version; exit 3")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || !strings.Contains(err.Error(), "nothing staged") {
		t.Fatalf("a failing command: %v (%#v)\n%s; want exit code 3 and nothing staged", err, exit, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after a failed update: %q, want only root (no leftover subvolume)", got)
	}
	_, err = run(t, e, "overlayupd", "update", "--store", top, "--keep-failed", "--", "false")
	if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(err.Error(), "kept as root.failed") {
		t.Fatalf("--keep-failed: %v", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root", "root.failed"}) {
		t.Errorf("after --keep-failed: %q, want root and root.failed", got)
	}
	if _, err := run(t, e, "overlayupd", "update", "--store", top, "--", "no-such-command"); !errors.As(err, &exit) || exit.Code != 127 {
		t.Errorf("a missing command: %v, want exit code 127", err)
	}
}

func TestUpdateRefusals(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "--store", top, "--", "true"}, "needs a btrfs store"},
		{[]string{"update", "--store", top}, "give a command after --, or --shell"},
		{[]string{"update", "--store", top, "--shell", "--", "true"}, "one of them"},
		{[]string{"update", "--store", top, "true"}, "after --"},
		{[]string{"update", "--store", top, "--tries", "0", "--", "true"}, "--tries 0"},
	} {
		if _, err := run(t, e, "overlayupd", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestShadowCheck(t *testing.T) {
	t.Parallel()
	old := testroot.NewTree(t, testroot.File("etc/a.conf", "v1", 0o644), testroot.File("etc/same", "s", 0o644),
		testroot.File("var/lib/dpkg/status", "old", 0o644))
	upd := testroot.NewTree(t, testroot.File("etc/a.conf", "v2 changed", 0o644), testroot.File("etc/same", "s", 0o644),
		testroot.File("var/lib/dpkg/status", "new and longer", 0o644))
	// Same content, same time: not a change.
	for _, p := range []string{"etc/same"} {
		fi, err := os.Stat(filepath.Join(old, p))
		testroot.Must(t, err)
		testroot.Must(t, os.Chtimes(filepath.Join(upd, p), fi.ModTime(), fi.ModTime()))
	}
	layer := testroot.NewTree(t, testroot.File("data/etc/a.conf", "mine", 0o644), testroot.File("data/etc/same", "mine", 0o644),
		testroot.File("data/etc/only-mine", "x", 0o644))
	var w strings.Builder
	if err := shadowCheck(&w, filepath.Join(layer, "data"), layer, old, upd, false); err != nil {
		t.Fatalf("no dpkg files shadowed: %v", err)
	}
	if out := w.String(); !strings.Contains(out, "/etc/a.conf") || strings.Contains(out, "/etc/same") || strings.Contains(out, "only-mine") {
		t.Errorf("warning names the wrong files:\n%s", out)
	}
	testroot.Apply(t, layer, testroot.File("data/var/lib/dpkg/status", "mine", 0o644))
	if err := shadowCheck(&w, filepath.Join(layer, "data"), layer, old, upd, false); err == nil || !strings.Contains(err.Error(), "dpkg") {
		t.Errorf("dpkg's database shadowed: %v, want a refusal", err)
	}
	if err := shadowCheck(&w, filepath.Join(layer, "data"), layer, old, upd, true); err != nil {
		t.Errorf("with --force: %v", err)
	}
}

// TestUpdateBootPolicy: a /boot of its own is read-only for the update's
// command, and the failure names --allow-boot-writes; with it, the write
// reaches /boot (every root's) and not the snapshot.
func TestUpdateBootPolicy(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	// This namespace's /boot becomes a filesystem of its own, as a Pi's
	// firmware partition is.
	testroot.Must(t, os.MkdirAll("/boot", 0o755))
	testroot.Must(t, unix.Mount("boot", "/boot", "tmpfs", 0, "size=8m"))
	defer unix.Unmount("/boot", unix.MNT_DETACH)
	_, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "echo k > /boot/kernel")
	if err == nil || !strings.Contains(err.Error(), "--allow-boot-writes") {
		t.Fatalf("a write to a read-only /boot: %v, want a failure naming --allow-boot-writes", err)
	}
	if _, err := os.Stat("/boot/kernel"); err == nil {
		t.Fatal("the write reached /boot although it is read-only during updates")
	}
	if out, err := run(t, e, "overlayupd", "update", "--store", top, "--allow-boot-writes", "--", "sh", "-c", "echo k > /boot/kernel"); err != nil {
		t.Fatalf("--allow-boot-writes: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile("/boot/kernel"); string(b) != "k\n" {
		t.Errorf("/boot/kernel = %q, want the update's write", b)
	}
	if _, err := os.Stat(slotPath(top, "root.try-1/boot/kernel")); err == nil {
		t.Error("the /boot write landed in the snapshot")
	}
}

// TestUpdateBreakingInit: an update that removes /sbin/init stages nothing.
func TestUpdateBreakingInit(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	if _, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "rm /sbin/init"); err == nil || !strings.Contains(err.Error(), "would not boot") {
		t.Fatalf("an update that removes /sbin/init: %v, want a refusal", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after the refused update: %q, want only root", got)
	}
}

// TestUpdatePolicyLink: a snapshot whose policy-rc.d is an absolute link to
// a file of the running system: update neither writes through it nor
// loses it.
func TestUpdatePolicyLink(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	host := filepath.Join(t.TempDir(), "host-policy")
	testroot.Must(t, os.WriteFile(host, []byte("host's own\n"), 0o644))
	top := shellStore(t, e, testroot.Symlink(host, "usr/sbin/policy-rc.d"))
	if out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "true"); err != nil {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(host); string(b) != "host's own\n" {
		t.Errorf("update wrote through the link into the running system's file: %q", b)
	}
	if to, err := os.Readlink(slotPath(top, "root.try-1/usr/sbin/policy-rc.d")); err != nil || to != host {
		t.Errorf("the snapshot's own policy-rc.d link: %q, %v; want it back as it was", to, err)
	}
}

// TestUpdateInterrupted: Ctrl-C (SIGINT to overlayupd) while CMD runs:
// CMD finishes its way, and nothing is staged, nothing left over.
func TestUpdateInterrupted(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	// CMD says it runs through the host's /dev (bound in); then this test
	// sends SIGINT to its own process, which runs update, as a terminal's
	// Ctrl-C would (and CMD finishes its way).
	mark := filepath.Join("/dev/shm", fmt.Sprintf("overlayupd-test-%d", os.Getpid()))
	defer os.Remove(mark)
	go func() {
		for range 200 {
			if _, err := os.Stat(mark); err == nil {
				_ = unix.Kill(os.Getpid(), unix.SIGINT)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	_, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "echo v2 > /etc/version; echo > "+mark+"; sleep 2")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 130 || !strings.Contains(err.Error(), "nothing staged") {
		t.Fatalf("an interrupted update: %v; want exit 130 and nothing staged", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after the interrupted update: %q, want only root", got)
	}
}

// TestUpdateCtrlC: Ctrl-C on a terminal sends SIGINT to the whole
// foreground process group: update, its chroot helper (PID 1 of the
// update's namespaces) and CMD. CMD handles it its own way (here: it
// finishes), update waits for it, exits 130 and stages nothing. The helper
// must not die of the signal: that SIGKILLs CMD and everything it started
// mid-way, and update then reported the helper's status as CMD's ("exited
// with 2").
func TestUpdateCtrlC(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	mark := ctrlCWhenMarked(t, "ctrlc", 1)
	script := "trap 'echo got-sigint' INT; echo > " + mark + "; sleep 1; sleep 1; echo cmd-finished"
	out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", script)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 130 || !strings.Contains(err.Error(), "nothing staged") {
		t.Errorf("Ctrl-C: %v; want exit 130 and nothing staged\n%s", err, out)
	}
	if err != nil && strings.Contains(err.Error(), "exited with 2") {
		t.Errorf("Ctrl-C reported as the command's own exit code: %v", err)
	}
	if !strings.Contains(out, "cmd-finished") {
		t.Errorf("the command was killed instead of handling Ctrl-C its own way:\n%s", out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after Ctrl-C: %q, want only root", got)
	}
}

// TestUpdateCtrlCTwice: a CMD that ignores Ctrl-C (apt-get while dpkg
// runs, a stuck script) is waited for after the first one; the second one
// stops it and everything it started at once, and nothing is staged.
func TestUpdateCtrlCTwice(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	mark := ctrlCWhenMarked(t, "ctrlc2", 2)
	start := time.Now()
	out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", "trap '' INT; echo > "+mark+"; sleep 60")
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("update took %s: the second Ctrl-C did not stop the command", d)
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 130 || !strings.Contains(err.Error(), "nothing staged") {
		t.Errorf("Ctrl-C twice: %v; want exit 130 and nothing staged\n%s", err, out)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after Ctrl-C twice: %q, want only root", got)
	}
}

// TestUpdateShellCtrlC: in 'update --shell' Ctrl-C belongs to the shell:
// it stops the job that runs there (an apt-get the user thought better of)
// and the shell goes on (an interactive shell ignores SIGINT; this one,
// fed by a pipe, traps it). The session is not thrown away: exit 0 still
// stages it.
func TestUpdateShellCtrlC(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	mark := ctrlCWhenMarked(t, "shellctrlc", 1)
	session := "trap 'echo job-interrupted' INT\necho > " + mark + "\nsleep 5\necho v2 > /etc/version\nexit 0\n"
	out, err := runIn(t, e, strings.NewReader(session), "update", "--store", top, "--shell")
	if err != nil {
		t.Fatalf("a shell session with a Ctrl-C in it, ended by exit 0: %v; want it staged\n%s", err, out)
	}
	if !strings.Contains(out, "job-interrupted") {
		t.Errorf("the shell's job did not get Ctrl-C:\n%s", out)
	}
	if b, _ := os.ReadFile(slotPath(top, "root.try-1/etc/version")); string(b) != "v2\n" {
		t.Errorf("staged root's /etc/version = %q, want v2", b)
	}
}

// TestUpdateCtrlBackslash: Ctrl-\ (SIGQUIT to the foreground group) is an
// interruption like Ctrl-C: update must not die of it between its steps,
// leaving its snapshot behind (and the store writable): it stages
// nothing and gives the space back. Run as a process of its own, in a
// process group of its own, as a terminal runs it.
func TestUpdateCtrlBackslash(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	mark := filepath.Join("/dev/shm", fmt.Sprintf("overlayupd-test-quit-%d", os.Getpid()))
	defer os.Remove(mark)
	cmd := exec.Command(testroot.BinaryPath(t), "update", "--store", top, "--", "sh", "-c", "echo > "+mark+"; sleep 3")
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	testroot.Must(t, cmd.Start())
	go func() {
		for range 400 {
			if _, err := os.Stat(mark); err == nil {
				_ = unix.Kill(-cmd.Process.Pid, unix.SIGQUIT)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	err := cmd.Wait()
	if strings.Contains(out.String(), "goroutine ") || err == nil {
		t.Errorf("update on Ctrl-\\: %v; want an interrupted update, not a crash:\n%s", err, out.String())
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after Ctrl-\\: %q, want only root (the snapshot removed)\n%s", got, out.String())
	}
}

// TestUpdateKeepFailedCannotKeep: --keep-failed asks to keep a failed
// update's snapshot as root.failed; when it cannot be kept (here: a
// subvolume made inside it, which Seal refuses), update says so and why,
// rather than only "nothing staged" with the snapshot silently deleted.
func TestUpdateKeepFailedCannotKeep(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	e := testEnv(t)
	top := shellStore(t, e)
	mark := filepath.Join("/dev/shm", fmt.Sprintf("overlayupd-test-keep-%d", os.Getpid()))
	defer os.Remove(mark)
	made := make(chan error, 1)
	go func() {
		for range 400 {
			if _, err := os.Stat(mark); err == nil {
				stages, _ := filepath.Glob(slotPath(top, ".stage-*"))
				if len(stages) != 1 {
					made <- fmt.Errorf("stages %q", stages)
					return
				}
				made <- snapshot.Create(filepath.Join(stages[0], "nested"))
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		made <- errors.New("no mark")
	}()
	_, err := run(t, e, "overlayupd", "update", "--store", top, "--keep-failed", "--", "sh", "-c", "echo > "+mark+"; sleep 2; exit 3")
	if merr := <-made; merr != nil {
		t.Fatalf("a subvolume inside the snapshot: %v", merr)
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("update: %v, want exit code 3", err)
	}
	if !strings.Contains(err.Error(), "not kept") || !strings.Contains(err.Error(), "nested") {
		t.Errorf("--keep-failed that could not keep the snapshot: %v; want it to say it was not kept, and why", err)
	}
	if got := btrfsSlots(t, top); !slices.Equal(got, []string{"root"}) {
		t.Errorf("after the update: %q, want only root", got)
	}
}

// descendants lists the processes below pid, children first.
// ctrlCWhenMarked returns the path of a mark file for the command under
// test to create once it runs, and types Ctrl-C times times (500 ms apart)
// as a terminal does when it appears: SIGINT to this process and every one
// it started (the foreground group). It gives up after 10 s.
func ctrlCWhenMarked(t *testing.T, name string, times int) string {
	t.Helper()
	mark := filepath.Join("/dev/shm", fmt.Sprintf("overlayupd-test-%s-%d", name, os.Getpid()))
	t.Cleanup(func() { os.Remove(mark) })
	go func() {
		for range 400 {
			if _, err := os.Stat(mark); err == nil {
				for i := range times {
					if i > 0 {
						time.Sleep(500 * time.Millisecond)
					}
					for _, pid := range descendants(os.Getpid()) {
						_ = unix.Kill(pid, unix.SIGINT)
					}
					_ = unix.Kill(os.Getpid(), unix.SIGINT)
				}
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	return mark
}

func descendants(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		n, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
			out = append(out, descendants(n)...)
		}
	}
	return out
}

// TestUpdatePolicyChangedByCMD: CMD removes policy-rc.d (a package's
// maintainer script), or writes its own (a package that ships one): the
// update still stages, and the new root keeps what CMD left, not update's
// own denial of services.
func TestUpdatePolicyChangedByCMD(t *testing.T) {
	if !testroot.InPrivateMountNS(t, "mkfs.btrfs") {
		return
	}
	for _, tc := range []struct {
		name, script, want string // want "": no policy-rc.d in the new root
	}{
		{"removed", "rm /usr/sbin/policy-rc.d", ""},
		{"replaced", "printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d", "#!/bin/sh\nexit 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEnv(t)
			top := shellStore(t, e)
			if out, err := run(t, e, "overlayupd", "update", "--store", top, "--", "sh", "-c", tc.script); err != nil {
				t.Fatalf("update: %v\n%s", err, out)
			}
			b, err := os.ReadFile(slotPath(top, "root.try-1/usr/sbin/policy-rc.d"))
			if tc.want == "" && !errors.Is(err, os.ErrNotExist) || tc.want != "" && string(b) != tc.want {
				t.Errorf("the new root's policy-rc.d: %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}
