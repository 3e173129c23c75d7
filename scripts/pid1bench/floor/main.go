// Command floor is the Go floor of the native PID-1 bench (scripts/bench.sh,
// part 3): a static Go program that only execs /sbin/init, so its time is
// what the Go runtime's start costs any Go PID 1 before it does any work.
package main

import (
	"os"
	"syscall"
)

func main() {
	err := syscall.Exec("/sbin/init", os.Args, os.Environ())
	os.Stderr.WriteString("floor: exec /sbin/init: " + err.Error() + "\n")
	os.Exit(127)
}
