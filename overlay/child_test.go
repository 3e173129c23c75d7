package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRunChild: output, exit status, the timeout (also when the program has
// ended but left something holding its stdout), and the output cap.
func TestRunChild(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	for _, tc := range []struct {
		name, script string
		out          string
		err          string
		timedOut     bool
	}{
		{name: "output", script: "echo hello; echo err >&2", out: "hello\n"},
		{name: "exit status", script: "echo partial; exit 3", out: "partial\n", err: "exit status 3"},
		{name: "killed by a signal", script: "kill -TERM $$", err: "signal: terminated"},
		{name: "hangs", script: "sleep 30", timedOut: true},
		{name: "leaves stdout open", script: "sleep 30 & echo started", timedOut: true},
		{name: "too much output", script: "yes", err: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			start := time.Now()
			err := runChild("/bin/sh", sh(tc.script), nil, 500*time.Millisecond, &out)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s, past the timeout", took)
			}
			switch {
			case tc.timedOut:
				if !errors.Is(err, errTimedOut) {
					t.Errorf("err = %v, want errTimedOut", err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			}
			if tc.out != "" && out.String() != tc.out {
				t.Errorf("stdout %q, want %q", out.String(), tc.out)
			}
			if out.Len() > childOutputMax+1 {
				t.Errorf("kept %d bytes of output", out.Len())
			}
		})
	}
	// No stdout wanted: the program's output goes to /dev/null.
	if err := runChild("/bin/sh", sh("echo x"), nil, time.Second, nil); err != nil {
		t.Errorf("without stdout: %v", err)
	}
	if err := runChild("/nonexistent", []string{"/nonexistent"}, nil, time.Second, nil); err == nil {
		t.Error("a missing program ran")
	}
}

// TestRunChildUnkillable: a program that outlives its kill (in the kernel,
// uninterruptible) is left behind once the grace is over: PID 1 goes on.
// The kill is made to miss, so the child (sleep) outlives it.
func TestRunChildUnkillable(t *testing.T) {
	var child *os.Process
	killChild = func(p *os.Process) error { child = p; return nil }
	killGrace = 300 * time.Millisecond
	defer func() { killChild, killGrace = killGroup, 2*time.Second }()
	for _, withStdout := range []bool{false, true} {
		var out *bytes.Buffer
		if withStdout {
			out = new(bytes.Buffer)
		}
		start := time.Now()
		err := runChild("/bin/sh", []string{"/bin/sh", "-c", "exec sleep 30"}, nil, 200*time.Millisecond, out)
		took := time.Since(start)
		if child != nil {
			_ = child.Kill()
		}
		if !errors.Is(err, errTimedOut) {
			t.Errorf("stdout %v: err = %v, want errTimedOut", withStdout, err)
		}
		if took > 3*time.Second {
			t.Errorf("stdout %v: took %s: runChild waited for a program its kill did not end", withStdout, took)
		}
		if child == nil {
			t.Errorf("stdout %v: the program was never killed", withStdout)
		}
		child = nil
	}
}

// TestRunChildKillsGroup: on a timeout, what the program started dies with
// it, whether the program still runs or has ended and left it holding
// stdout: a get-mode script's background sleep must not outlive the boot
// step.
func TestRunChildKillsGroup(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"program still running", "sleep 300 & echo $! > %s; sleep 300"},
		{"program ended, stdout held", "sleep 300 & echo $! > %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := t.TempDir() + "/pid"
			var out bytes.Buffer
			// 2 s: ample for the shell to write the pid on a loaded machine.
			err := runChild("/bin/sh", []string{"/bin/sh", "-c", fmt.Sprintf(tc.script, pidFile)}, nil, 2*time.Second, &out)
			if !errors.Is(err, errTimedOut) {
				t.Fatalf("err = %v, want errTimedOut", err)
			}
			b, err := os.ReadFile(pidFile)
			pid := strings.TrimSpace(string(b))
			if err != nil || pid == "" {
				t.Fatalf("the script wrote no pid within the timeout (%q, %v): the test proves nothing", b, err)
			}
			// Dead: gone, or a zombie its new parent has not reaped yet.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err := os.ReadFile("/proc/" + pid + "/stat")
				if err != nil {
					return
				}
				if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
					return
				}
				if time.Now().After(deadline) {
					_ = exec.Command("kill", "-9", pid).Run()
					t.Fatalf("the background sleep (pid %s) outlived the timeout", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
