// Command floorimports is the floor of the native PID-1 bench (see
// ../floor) plus every package the boot path links: it initialises them and
// execs /sbin/init without doing any of their work. Its distance from the
// floor is what the boot path's packages cost before main (their init
// functions and code pages); its distance from init-overlay is the work.
package main

import (
	"os"
	"syscall"

	_ "github.com/overlayupd/overlayupd/boot"
)

func main() {
	err := syscall.Exec("/sbin/init", os.Args, os.Environ())
	os.Stderr.WriteString("floorimports: exec /sbin/init: " + err.Error() + "\n")
	os.Exit(127)
}
