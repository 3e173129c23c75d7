// Command dmflakey is a test helper of the VM suite (tests/damage_test.go):
// in the harness's initramfs, before the disk is mounted as the kernel's
// root, it maps the disk through device-mapper so that chosen sectors
// return I/O errors, the way a worn SD card's bad blocks do, and prints
// the device to mount instead.
//
//	dmflakey DISK        (the sectors: harness.badblocks=S+N,S+N on the kernel command line)
//
// The table (table.go) is the disk in linear pieces, with a dm-flakey
// target that is down all the time (up 0 s, down 1 s: every read fails)
// over each bad range. It is never part of a release: only the tests build
// it, into an initramfs.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/overlayupd/overlayupd/internal/dm"
)

// name is the device-mapper device's name.
const name = "harness-flakey"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dmflakey DISK (sectors from harness.badblocks= on the kernel command line)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "dmflakey: %v\n", err)
		os.Exit(1)
	}
}

func run(disk string) error {
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	var spec string
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "harness.badblocks="); ok {
			spec = v
		}
	}
	bad, err := parseRanges(spec)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(disk), "size"))
	if err != nil {
		return fmt.Errorf("size of %s: %w", disk, err)
	}
	size, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("size of %s: %w", disk, err)
	}
	targets, err := table(disk, size, bad)
	if err != nil {
		return err
	}
	dev, err := dm.Create(name, false, targets)
	if err != nil {
		return err
	}
	p, err := dm.DevPath(dev)
	if err != nil {
		return err
	}
	for _, t := range targets {
		fmt.Fprintf(os.Stderr, "dmflakey: %d %d %s %s\n", t.Start, t.Length, t.Type, t.Params)
	}
	fmt.Println(p)
	return nil
}
