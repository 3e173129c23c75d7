//go:build overlayupd_crashhook

package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// CrashEnv names the crash tests' hook: OVERLAYUPD_CRASH_AFTER_OP=N reboots
// the machine at once, without sync, when a command has made N of its
// renames durable (0: before the first). It is how the VM tests cut the
// power at a named point of apply, commit or rollback. Only binaries built
// with the overlayupd_crashhook tag (make build-test) have it: a release
// binary must never reboot without sync because of an environment variable.
const CrashEnv = "OVERLAYUPD_CRASH_AFTER_OP"

// crashNow reboots without sync.
func crashNow() {
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("b"), 0); err != nil {
		fmt.Fprintf(os.Stderr, "overlayupd: %s: cannot reboot: %v\n", CrashEnv, err)
		os.Exit(3)
	}
	for { // the reboot takes the machine; nothing after this point runs
		time.Sleep(time.Hour)
	}
}

func crashPoint() func(int) { return hookFor(os.LookupEnv(CrashEnv)) }

// hookFor is the hook for the value v of CrashEnv (ok: it is set).
func hookFor(v string, ok bool) func(int) {
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return nil
	}
	return func(i int) {
		if i == n {
			fmt.Fprintf(os.Stderr, "overlayupd: %s=%d: rebooting without sync now\n", CrashEnv, n)
			crashNow()
		}
	}
}
