//go:build linux && (amd64 || arm64 || arm)

package main

// prelude is init-overlay's ELF entry point: the Makefile links it with
// -E main.prelude. Before the Go runtime starts, it asks the kernel to read
// the whole binary: madvise(MADV_WILLNEED) over its text, read-only data
// and data, one call per 128 KiB, from runtime·text (rounded down to
// 64 KiB, the largest page size) to runtime·edata (not into the bss:
// anonymous memory, for which a kernel without swap fails the call). Then
// it jumps to the runtime's own entry, _rt0_<arch>_linux, with the stack
// and the registers the runtime reads as the kernel left them. Results are
// not looked at: ENOMEM says a range has unmapped holes (between segments,
// on arm and arm64 with 4 KiB pages), and the kernel has read every mapped
// part all the same; any other error (an old kernel) only leaves the reads
// to the page faults, as without it.
//
// Why: PID 1 is read from the boot disk at every boot, and the runtime's
// start touches pages all over the binary before the first line of Go runs.
// Each fault on a page not yet read waits for a read of the kernel's
// read-around window (128 KiB by default): started from a fresh loop
// device with read_ahead_kb=128, init-overlay waited for 27 such reads
// before main, one after the other. With the prelude the kernel is asked
// for all of it at once, and the faults that follow wait on reads already
// under way: 2 major faults. A prefetch from main (or from the first
// package init) comes too late: by then all but two of those faults have
// happened. Under emulation, where each wait for the disk is slow, that was
// 25-80 ms of a boot (make bench, part one).
//
// Why one call per 128 KiB: the kernel reads at most max(read_ahead_kb,
// max_sectors_kb) of one WILLNEED call in each mapping it covers
// (force_page_cache_ra) and drops the rest without a word. One call over
// the whole binary read the first 1.25 MiB of each segment on a virtio
// disk, and 128 KiB of each on a disk that takes requests of at most
// 128 KiB, as some SD card hosts do; the faults were then as many as
// without the prelude (TestPreludeFaults). 128 KiB is the default
// read-ahead window, so each call is read whole unless both settings were
// lowered; about 22 calls for this binary.
//
// prelude_*.s hold it for amd64, arm64 and arm (GOARM 6 and 7), the
// architectures make builds; its test (prelude_test.go) checks that the
// binary make builds makes these calls first, and that they cut the faults.
//
//lint:ignore U1000 the entry point, named to the linker (-E main.prelude), not called from Go
func prelude()
