// Package keeper owns the trial watchdog: the process that keeps a trial
// boot's hardware watchdog fed until the trial commits or rolls back, and
// lets it reset the board when the trial hangs or misses its deadline.
//
// It is imported by the PID-1 path, so it uses the standard library and
// golang.org/x/sys only (no cobra, no codecs, no cgo).
//
// # How it runs
//
// In a trial boot only, the trampoline (PID 1), right after the try is
// consumed and before it mounts the trial, opens the watchdog device
// (Arm: WDIOC_GETSUPPORT, WDIOC_SETTIMEOUT, a first WDIOC_KEEPALIVE), and
// starts the keeper: a fork and exec of the same binary, marked by its
// argv[0] (ProcName), holding the device and the store's slot directory as
// inherited file descriptors. Go cannot fork without exec, and a goroutine
// of PID 1 would die with the exec of the real init. The keeper's root and
// working directory are the old root's "/", so pivot_root moves them to the
// new root with every other process of the namespace; its descriptors do
// not depend on any path, so it sees the store wherever it is mounted.
//
// The keeper feeds the watchdog every quarter of its timeout (FeedPeriod;
// every 250 ms when the driver neither reports nor takes a timeout: never a
// guessed one, which a board fixed at a second or two outruns) and checks
// the slot directory every second:
//
//   - the trial entry is gone (commit renames it to root.next, rollback and
//     failure to root.failed): the trial is over; disarm (magic close 'V'),
//     or, when the kernel has nowayout, go on feeding it for good, or, when
//     systemd is PID 1 with RuntimeWatchdogSec, hand the running device to
//     systemd (see Handover);
//   - the deadline passed with the trial still there: stop feeding; the
//     board resets within the timeout, unless the trial commits first;
//   - the kernel hangs: nothing runs, nothing feeds; the board resets.
//
// A committed or classic boot never opens the device. The keeper's second
// duty is the boot budget's good mark (trampoline/budget.go): under
// overlayupd.boot_budget, a committed boot that the trampoline laid and
// pivoted into leaves a keeper (no device: Config.BootCount and GoodAfter)
// that renames the boot count to boots-0 once the system has run for
// overlayupd.good_after, or at an orderly shutdown (SIGTERM) before that,
// under the store lock with the store writable for the moment (good_linux.go).
//
// # Decisions are data
//
// Params (the kernel command line), ResolveDeadline, ChooseTimeout,
// ArmedTimeout and FeedPeriod, Next (what the keeper does on each tick), the systemd configuration and the
// keeper's argv are pure functions with table tests; the ioctls, sysfs and
// the process start are in the _linux.go files.
package keeper
