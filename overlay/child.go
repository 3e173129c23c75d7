package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// errTimedOut is runChild's error when the program did not finish in time.
var errTimedOut = errors.New("did not finish in time")

// childOutputMax bounds what runChild keeps of a program's output.
const childOutputMax = 1 << 20

// runChild runs the program at path with argv (argv[0] included) and env,
// its stdin and stderr /dev/null and its stdout into stdout (when not nil,
// at most childOutputMax bytes), and waits for it for at most timeout: then
// it is killed and the error matches errTimedOut, as it does when the
// program has ended but something it started still holds its stdout. A
// killed program that has not ended killGrace later is left running (see
// below), and runChild returns errTimedOut. A program that exits non-zero
// is an error that says its exit status.
//
// Why not os/exec: PID 1 runs programs only here (the get-mode script,
// modprobe), and os/exec with context brought a tenth of a megabyte to
// init-overlay, read from the boot disk at every boot.
func runChild(path string, argv, env []string, timeout time.Duration, stdout *bytes.Buffer) error {
	// Read-write: it is the program's stderr too (and its stdout without
	// stdout), where a write must not fail.
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	files := []*os.File{null, null, null}
	var r, w *os.File
	if stdout != nil {
		if r, w, err = os.Pipe(); err != nil {
			return err
		}
		defer r.Close()
		files[1] = w
	}
	start := time.Now()
	// Setpgid: the program leads a process group of its own, so that a
	// kill on timeout ends what it started too (a get-mode script's
	// sleep, a helper that modprobe runs), not only the program.
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: files, Sys: &syscall.SysProcAttr{Setpgid: true}})
	if w != nil {
		w.Close() // the child has its copy; EOF comes when it (and all it started) close theirs
	}
	if err != nil {
		return err
	}
	waited := make(chan waitResult, 1)
	go func() {
		st, err := p.Wait()
		waited <- waitResult{st, err}
	}()
	killed := false
	kill := func() {
		killed = true
		_ = killChild(p)
	}
	var rerr error
	if r != nil {
		// A grandchild that keeps the pipe open must not hold PID 1 past
		// the timeout either.
		_ = r.SetReadDeadline(start.Add(timeout))
		var n int64
		n, rerr = io.Copy(stdout, io.LimitReader(r, childOutputMax+1))
		if n > childOutputMax {
			_ = killChild(p)
			rerr = fmt.Errorf("more than %d bytes of output", childOutputMax)
		} else if errors.Is(rerr, os.ErrDeadlineExceeded) {
			kill()
		}
	}
	deadline := time.NewTimer(time.Until(start.Add(timeout)))
	defer deadline.Stop()
	var res waitResult
	select {
	case res = <-waited:
	case <-deadline.C:
		kill()
		// Why the wait for the end is bounded too: a program blocked in
		// the kernel (uninterruptible sleep on a hung device, as modprobe
		// can be) dies only when that call returns, maybe never. PID 1
		// must go on booting: the program is left behind, and the real
		// init, which inherits it, reaps it.
		select {
		case res = <-waited:
		case <-time.After(killGrace):
			return errTimedOut
		}
	}
	if killed {
		return errTimedOut
	}
	if rerr != nil {
		return rerr
	}
	if res.err != nil {
		return res.err
	}
	if !res.st.Success() {
		return errors.New(res.st.String())
	}
	return nil
}

type waitResult struct {
	st  *os.ProcessState
	err error
}

// killGrace is how long runChild waits for a killed program to end; killChild
// kills it. Variables for tests.
var (
	killGrace = 2 * time.Second
	killChild = killGroup
)

// killGroup kills p's process group, p and everything it started that
// stayed in it; p alone when the group is gone (ESRCH).
func killGroup(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err == nil {
		return nil
	}
	return p.Kill()
}
