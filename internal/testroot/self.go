package testroot

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// EmulatorEnv names the emulator that runs this test binary when it is not
// of the host's machine: `make test-arm-unit` runs the tests of another
// architecture with `go test -exec "qemu-aarch64-static -cpu cortex-a53"`
// and sets it to the same words. The kernel cannot exec such a binary
// itself (no binfmt_misc handler is registered on the host, and the tests
// never register one), so a test that runs its own binary again goes
// through the emulator too: Self.
const EmulatorEnv = "OVERLAYUPD_TEST_EMULATOR"

// Self is the argv that runs this test binary again with args: the
// emulator's words first when EmulatorEnv names one.
func Self(args ...string) []string {
	argv := append(strings.Fields(os.Getenv(EmulatorEnv)), os.Args[0])
	return append(argv, args...)
}

// SelfCommand is exec.Command of Self(args...).
func SelfCommand(args ...string) *exec.Cmd {
	argv := Self(args...)
	return exec.Command(argv[0], argv[1:]...)
}

// Emulated reports whether this test binary runs under the emulator that
// EmulatorEnv names.
func Emulated() bool { return os.Getenv(EmulatorEnv) != "" }

// SkipIfEmulatorLacks skips t when this test binary runs under an emulator
// and err is ENOSYS: qemu-user does not implement every system call and
// ioctl (Debian 12's lacks openat2 and btrfs's TREE_SEARCH, among
// others), and says so with ENOSYS. The code is still run on the
// architecture's own kernel by the VM suite (make test-arm). Outside an
// emulator, or for any other error, it does nothing: a kernel's ENOSYS is
// a failure like any other.
func SkipIfEmulatorLacks(t testing.TB, what string, err error) {
	t.Helper()
	if Emulated() && errors.Is(err, unix.ENOSYS) {
		t.Skipf("%s: %v: the emulator (%s) lacks it; the ARM VM suite runs this on the architecture's kernel", what, err, os.Getenv(EmulatorEnv))
	}
}

// NeedOpenat2 skips t (SkipIfEmulatorLacks) when openat2 is missing under
// an emulator.
func NeedOpenat2(t testing.TB) {
	t.Helper()
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
	}
	SkipIfEmulatorLacks(t, "openat2", err)
}

// GoodAtOnce returns the kernel command line words with
// overlayupd.good_after=0 added, unless the test sets the boot budget or the
// good mark itself. Why: a test boot lasts seconds, less than the keeper's
// floor for an orderly shutdown (keeper.OrderlyFloor), so without it a
// scenario's committed root would spend its boot budget in a few boots and
// fall back; a healthy device earns the mark after good_after (5 minutes).
func GoodAtOnce(words []string) []string {
	for _, w := range words {
		if strings.HasPrefix(w, "overlayupd.good_after=") || strings.HasPrefix(w, "overlayupd.boot_budget=") {
			return words
		}
	}
	return append(words, "overlayupd.good_after=0")
}
