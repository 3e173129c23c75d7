package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultHealthDir holds the checks commit runs before it keeps a trial.
const DefaultHealthDir = "/etc/overlayupd/health.d"

// healthTail is how much of a failed check's output the refusal quotes.
const healthTail = 1024

// healthChecks lists the checks in dir, in lexical order: the executable
// regular files (symlinks followed), except hidden ones and editor backups,
// as run-parts would. A missing dir has none.
func healthChecks(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("health checks: %w", err)
	}
	var out []string
	for _, e := range ents { // ReadDir sorts by name
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// runHealthChecks runs each check with its own timeout and stops at the first
// failure, which names the check and quotes the end of its output.
func runHealthChecks(ctx context.Context, dir string, timeout time.Duration, env []string) (ran int, err error) {
	checks, err := healthChecks(dir)
	if err != nil {
		return 0, err
	}
	for _, p := range checks {
		if err := runCheck(ctx, p, timeout, env); err != nil {
			return ran, err
		}
		ran++
	}
	return ran, nil
}

func runCheck(ctx context.Context, path string, timeout time.Duration, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &tailBuffer{max: 4 * healthTail}
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a timeout kills what the check started too,
	// and WaitDelay so a child that keeps the output pipe open cannot hang us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	why := err.Error()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = fmt.Sprintf("timed out after %s", timeout)
	}
	return fmt.Errorf("health check %s failed (%s)%s", path, why, quoteTail(out.b))
}

// tailBuffer keeps the last max bytes written to it: what a refusal quotes
// of a check's output, in bounded memory whatever the check prints (one
// looping on an error would otherwise grow commit until the board runs out
// of memory). Stdout and stderr share it: exec writes it from one goroutine.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		p = p[len(p)-t.max:]
	}
	if over := len(t.b) + len(p) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	t.b = append(t.b, p...)
	return n, nil
}

func quoteTail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ", no output"
	}
	if len(b) > healthTail {
		b = append([]byte("…"), b[len(b)-healthTail:]...)
	}
	return ":\n  " + strings.ReplaceAll(string(b), "\n", "\n  ")
}
