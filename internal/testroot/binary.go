package testroot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// BuildBinary returns the overlayupd binary under test: $OVERLAYUPD_BIN
// (make test sets it to make build-test's output), or else what
// `make build-test TESTBIN=<temp dir>/overlayupd` makes, once per test
// process. The Makefile is the one place that says how the binary is built
// (cgo, static, its tags and ldflags), so tests run the binary users install,
// plus one tag: the crash tests' hook (overlayupd_crashhook), inert unless
// OVERLAYUPD_CRASH_AFTER_OP is set, and absent from release builds.
func BuildBinary() (string, error) {
	binOnce.Do(func() {
		if binPath = os.Getenv("OVERLAYUPD_BIN"); binPath == "" {
			binPath, binErr = makeBuild()
		}
		if binErr == nil {
			binErr = checkExecutable(binPath)
		}
	})
	return binPath, binErr
}

// InitBinary returns the PID-1 binary under test, init-overlay
// (cmd/init-overlay): make builds it beside the overlayupd binary, in the
// same directory, where store init looks for it too.
func InitBinary() (string, error) {
	bin, err := BuildBinary()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(bin), "init-overlay")
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("%w (make build-test builds it beside %s)", err, bin)
	}
	return p, nil
}

// BinaryPath is BuildBinary for a test: it fails t if there is no binary.
func BinaryPath(t testing.TB) string {
	t.Helper()
	p, err := BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func makeBuild() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "overlayupd-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "overlayupd")
	out, err := exec.Command("make", "-C", root, "--no-print-directory", "build-test", "TESTBIN="+bin).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("make build-test TESTBIN=%s (or set OVERLAYUPD_BIN): %w\n%s", bin, err, out)
	}
	return bin, nil
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("the overlayupd binary under test: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("the overlayupd binary under test: %s is not an executable file", p)
	}
	return nil
}

// ModuleRoot is the directory holding go.mod, found from the working
// directory up (go test runs in the package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}
