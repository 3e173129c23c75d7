// Command init-overlay is overlayupd's PID-1 path and nothing else: the
// trampoline that picks the root to boot from a store, lays the writable
// overlay over it and execs the real /sbin/init (package boot), or, on a
// plain root, the original init-overlay script's job (classic mode).
//
// Why a binary of its own: every boot of every device runs it, and before
// main a Go program pays for the initialisation and the code pages of every
// package it links. The admin commands (cmd/overlayupd) link cobra, go-diskfs's
// decompressors and containerd/btrfs with cgo and static glibc; none of that
// is used at boot. This binary is pure Go (CGO_ENABLED=0) and links only the
// packages the boot path runs; boot_test.go holds it to an allow-list.
//
// Run with a PID other than 1 it says what it is and exits 2: it never mounts
// over a running system.
//
// The runtime's container-aware GOMAXPROCS is off, and so are its periodic
// re-reads of the cgroup limits: this is PID 1 of a device. Two more
// runtime settings:
//   - asyncpreemptoff=1, which the Makefile links in (INIT_GODEBUG_ADD:
//     a //go:debug line does not take it): the runtime never interrupts a
//     goroutine with a signal to preempt it. PID 1 runs one goroutine
//     that matters, so those signals only cost: each is a signal frame,
//     the handler and a reschedule, and under emulation the start alone
//     runs long enough to draw several. 10 ms of a TCG boot, in the same
//     run (make bench, part one, 9 boots each). Goroutines still yield at
//     every call, as before Go 1.14; the boot path and the keeper have no
//     loops without calls.
//   - decoratemappings=0: no prctl(PR_SET_VMA) naming each of the
//     runtime's anonymous mappings, a system call per mapping that only
//     shows in /proc/PID/maps.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
//go:debug decoratemappings=0
package main

import (
	"os"
	"path/filepath"

	"github.com/overlayupd/overlayupd/boot"
	"github.com/overlayupd/overlayupd/keeper"
)

var version = "dev"

// Message is what init-overlay says when it is run by hand.
const Message = "init-overlay is overlayupd's PID-1 path (init=/sbin/init-overlay on the kernel command line) and runs only as PID 1: it would mount an overlay over this running system. The commands are 'overlayupd …' or 'overlayctl …', e.g. 'overlayupd status'."

func main() {
	// The trial watchdog's keeper: PID 1 starts it as a fork and exec of
	// this binary under that name (package keeper).
	if filepath.Base(os.Args[0]) == keeper.ProcName {
		os.Exit(keeper.Main(os.Args))
	}
	if os.Getpid() == 1 {
		boot.Main(os.Args, os.Environ()) // never returns
	}
	os.Exit(byHand(os.Args[1:], os.Stdout, os.Stderr))
}

// byHand answers a run with PID != 1: --version prints the version, anything
// else the one line that says what this is (on stderr, exit 2; on stdout,
// exit 0, for --help). It never mounts anything.
func byHand(args []string, stdout, stderr interface{ WriteString(string) (int, error) }) int {
	if len(args) == 1 {
		switch args[0] {
		case "--version", "-v", "version":
			stdout.WriteString("init-overlay " + version + "\n")
			return 0
		case "--help", "-h", "help":
			stdout.WriteString(Message + "\n")
			return 0
		}
	}
	stderr.WriteString(Message + "\n")
	return 2
}
