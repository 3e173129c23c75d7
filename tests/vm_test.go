package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// scratchDir holds what tests share within one process (initramfs archives).
var scratchDir string

func TestMain(m *testing.M) {
	var err error
	if scratchDir, err = os.MkdirTemp("", "overlayupd-tests-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratchDir)
	os.Exit(code)
}

// bootSlots bounds concurrent QEMU processes (TCG takes a core each).
var bootSlots = make(chan struct{}, vmParallel())

func vmParallel() int {
	if n, err := strconv.Atoi(os.Getenv("OVERLAYUPD_VM_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 2
}

const (
	bootTimeout = 120 * time.Second // one boot, power on to power off
	lineTimeout = 60 * time.Second  // default for expect
)

// session is one test's VM context: the assets and the folder where the
// console log of each boot is written; the folder is kept only if the test
// fails, and its path is then logged.
type session struct {
	t        *testing.T
	a        *assets
	logDir   string
	boots    int
	keepLogs bool // keep the logs even when the test passes
}

// newSession skips under -short, fetches the assets and marks the test
// parallel (boots still queue on bootSlots).
func newSession(t *testing.T) *session {
	t.Helper()
	a := needVM(t)
	t.Parallel()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(repoRoot(), "tests", "logs", name+"-"+time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, a: a, logDir: dir, keepLogs: os.Getenv("OVERLAYUPD_KEEP_LOGS") == "1"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console logs kept in %s", dir)
		} else if !s.keepLogs {
			os.RemoveAll(dir)
		}
	})
	return s
}

// bootOpts says how to boot a disk.
type bootOpts struct {
	init      string   // init= (default /sbin/init)
	step      string   // step= for the test /sbin/init
	args      []string // more kernel command line words
	skipModul string   // a module the initramfs leaves out
	qemuArgs  []string // more QEMU options
	modules   []string // more modules the initramfs loads (a watchdog driver)
	// reboot lets a guest reset reboot the VM in place (a watchdog reset
	// is then followed by the next boot on the same console); by default
	// QEMU exits on a reset (-no-reboot).
	reboot bool
	// drive replaces the QEMU options that attach the disk (by default
	// -drive file=DISK,format=raw,if=virtio,cache=unsafe): the flush-point
	// replay records its writes through a blklogwrites node.
	drive []string
	// devHelper, if set, is a program the initramfs runs before it mounts
	// the disk, and whose output names the device to mount instead (the
	// damage tests' dm-flakey mapping).
	devHelper string
}

// vm is a running QEMU with its serial console.
type vm struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string

	mu     sync.Mutex
	buf    []byte // the console so far, \r removed
	cursor int    // expect searches from here
	exited bool
	err    error // QEMU's exit status, once exited
	done   chan struct{}
}

// consoleQuiet is how long the console may be silent before a line that
// waits to be mended is handed on as it is.
const consoleQuiet = 300 * time.Millisecond

// boot starts QEMU on the disk and streams its console.
func (s *session) boot(d *disk, o bootOpts) *vm {
	t := s.t
	t.Helper()
	initrd, err := initramfs(s.a, o.devHelper, o.skipModul, o.modules...)
	if err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	if o.init == "" {
		o.init = "/sbin/init"
	}
	arch := s.a.arch
	cmdline := append([]string{"console=" + arch.console, "panic=-1", "printk.devkmsg=on"}, arch.cmdline...)
	cmdline = append(cmdline, "init="+o.init)
	if d.fstype != "ext4" {
		cmdline = append(cmdline, "rootfstype="+d.fstype)
	}
	if o.step != "" {
		cmdline = append(cmdline, "step="+o.step)
	}
	cmdline = append(cmdline, o.args...)
	cmdline = testroot.GoodAtOnce(cmdline)
	s.boots++
	v := &vm{t: t, done: make(chan struct{}),
		logPath: filepath.Join(s.logDir, fmt.Sprintf("boot%d-%s.log", s.boots, o.step))}
	logf, err := os.Create(v.logPath)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "# %s\n# cmdline: %s\n", d, strings.Join(cmdline, " "))
	noReboot := "-no-reboot"
	if o.reboot {
		noReboot = "-nodefaults" // said twice, harmless
	}
	v.cmd = exec.Command(s.a.qemu, "-accel", "tcg", "-m", "512", "-smp", "1",
		"-nodefaults", "-display", "none", noReboot, "-serial", "stdio", "-monitor", "none")
	v.cmd.Args = append(v.cmd.Args, arch.machine...)
	v.cmd.Args = append(v.cmd.Args, "-kernel", s.a.kernel, "-initrd", initrd, "-append", strings.Join(cmdline, " "))
	if o.drive == nil {
		o.drive = arch.disk(d.path)
	}
	v.cmd.Args = append(append(v.cmd.Args, o.drive...), o.qemuArgs...)
	out, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stderr = logf
	bootSlots <- struct{}{}
	if err := v.cmd.Start(); err != nil {
		<-bootSlots
		t.Fatalf("start qemu: %v", err)
	}
	chunks := make(chan []byte, 16)
	go func() {
		defer close(chunks)
		for {
			chunk := make([]byte, 4096)
			n, rerr := out.Read(chunk)
			if n > 0 {
				chunks <- chunk[:n]
			}
			if rerr != nil {
				return
			}
		}
	}()
	go func() {
		// The log file gets the raw console; the tests see it mended
		// (mendConsole), a line split by a kernel record held back until
		// its end comes, or the console is quiet for consoleQuiet.
		var pending []byte
		hand := func(flush bool) {
			var done []byte
			done, pending = mendConsole(pending, flush)
			v.mu.Lock()
			v.buf = append(v.buf, done...)
			v.mu.Unlock()
		}
		quiet := time.NewTimer(consoleQuiet)
		for open := true; open; {
			select {
			case chunk, ok := <-chunks:
				if !ok {
					open = false
					break
				}
				clean := []byte(strings.ReplaceAll(string(chunk), "\r", ""))
				logf.Write(clean)
				pending = append(pending, clean...)
				hand(false)
				quiet.Reset(consoleQuiet)
			case <-quiet.C:
				hand(true)
				quiet.Reset(consoleQuiet)
			}
		}
		quiet.Stop()
		hand(true)
		werr := v.cmd.Wait()
		<-bootSlots
		logf.Close()
		v.mu.Lock()
		v.exited, v.err = true, werr
		v.mu.Unlock()
		close(v.done)
	}()
	t.Cleanup(v.kill)
	return v
}

// expect waits for re to match the console after the previous match and
// returns the submatches. It fails the test on timeout or QEMU exit.
func (v *vm) expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		loc := rx.FindSubmatchIndex(v.buf[v.cursor:])
		exited := v.exited
		if loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = string(v.buf[v.cursor+loc[2*i] : v.cursor+loc[2*i+1]])
				}
			}
			v.cursor += loc[1]
			v.mu.Unlock()
			return m
		}
		v.mu.Unlock()
		if exited || time.Now().After(deadline) {
			state := "timed out"
			if exited {
				state = "QEMU exited"
			}
			v.t.Fatalf("expect %q: %s (timeout %v); console tail:\n%s\n(full log %s)",
				re, state, timeout, v.tail(25), v.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for QEMU to exit (power off, crash or kill) and returns the
// whole console.
func (v *vm) wait(timeout time.Duration) string {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(timeout):
		v.kill()
		v.t.Fatalf("QEMU still running after %v; console tail:\n%s\n(full log %s)", timeout, v.tail(25), v.logPath)
	}
	return v.console()
}

// kill cuts the power: QEMU is killed and reaped.
func (v *vm) kill() {
	select {
	case <-v.done:
		return
	default:
	}
	_ = v.cmd.Process.Kill()
	<-v.done
}

func (v *vm) console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return string(v.buf)
}

func (v *vm) tail(n int) string {
	lines := strings.Split(strings.TrimRight(v.console(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run boots the disk, waits for the test init to finish its step and power
// off, and returns the console.
func (s *session) run(d *disk, o bootOpts) string {
	s.t.Helper()
	v := s.boot(d, o)
	// \b, not \n: on a loaded host the kernel's console messages can land
	// inside the line ("pid=1[   15.08] clocksource: Long readout ...").
	v.expect(`harness: init-start uptime=\S+ pid=1\b`, bootTimeout)
	v.expect(`harness: step-done step=\S* rc=\d+`, bootTimeout)
	return v.wait(bootTimeout)
}
